"""The deployed fleet as the AWS APIs report it: the one reader of its state.

verify waits on it, the rolling deploy follows its instance refresh, `invoke load` samples its
capacity and metrics: all through `FleetView`, on AWS and in the local region alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webfleet.errors import WebfleetError

if TYPE_CHECKING:
    from mypy_boto3_autoscaling.type_defs import InstanceRefreshTypeDef

    from webfleet.targets import CloudTarget


@dataclass(frozen=True)
class Deployment:
    """What deploy left behind (its Terraform outputs): the fleet's names."""

    alb_dns_name: str
    asg_name: str
    target_group_arn: str
    ami_id: str | None
    https_listener: bool

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any], source: Path) -> Deployment:
        missing = [
            k for k in ("alb_dns_name", "asg_name", "target_group_arn") if not outputs.get(k)
        ]
        if missing:
            raise WebfleetError(f"{source} lacks {', '.join(missing)}: run `invoke deploy` again")
        return cls(
            alb_dns_name=str(outputs["alb_dns_name"]),
            asg_name=str(outputs["asg_name"]),
            target_group_arn=str(outputs["target_group_arn"]),
            ami_id=str(outputs["ami_id"]) if outputs.get("ami_id") else None,
            https_listener=bool(outputs.get("https_listener_arn")),
        )

    @property
    def target_group_name(self) -> str:
        """The target group's ARN suffix (targetgroup/name/id), as CloudWatch names it."""
        return self.target_group_arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Instance:
    instance_id: str
    private_ip: str | None
    public_ip: str | None
    image_id: str
    availability_zone: str

    def address(self, kind: str) -> str | None:
        return {
            "private_ip": self.private_ip,
            "public_ip": self.public_ip,
            "instance_id": self.instance_id,
        }.get(kind)

    @property
    def label(self) -> str:
        return f"{self.instance_id} ({self.private_ip or self.public_ip or 'no address'})"


class FleetView:
    """The group, its instances, the target group, refreshes and metrics of one deployment."""

    def __init__(self, target: CloudTarget, deployment: Deployment) -> None:
        self.deployment = deployment
        self._autoscaling = target.autoscaling()
        self._ec2 = target.ec2()
        self._elbv2 = target.elbv2()
        self._cloudwatch = target.cloudwatch()

    def group(self) -> dict[str, Any]:
        groups = self._autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.deployment.asg_name]
        )["AutoScalingGroups"]
        if not groups:
            raise WebfleetError(
                f"the Auto Scaling Group {self.deployment.asg_name} does not exist: "
                "run `invoke deploy`"
            )
        return dict(groups[0])

    def in_service_ids(self, group: dict[str, Any] | None = None) -> list[str]:
        """InService members, of the group as read now (or as already read)."""
        members = (group or self.group())["Instances"]
        return sorted(m["InstanceId"] for m in members if m["LifecycleState"] == "InService")

    def instances(self, ids: list[str]) -> list[Instance]:
        if not ids:
            return []
        reservations = self._ec2.describe_instances(InstanceIds=ids)["Reservations"]
        found = [item for reservation in reservations for item in reservation["Instances"]]
        return sorted(
            (
                Instance(
                    instance_id=item["InstanceId"],
                    private_ip=item.get("PrivateIpAddress"),
                    public_ip=item.get("PublicIpAddress"),
                    image_id=item.get("ImageId", ""),
                    availability_zone=item.get("Placement", {}).get("AvailabilityZone", ""),
                )
                for item in found
            ),
            key=lambda instance: instance.instance_id,
        )

    def target_health(self) -> list[dict[str, Any]]:
        descriptions = self._elbv2.describe_target_health(
            TargetGroupArn=self.deployment.target_group_arn
        )["TargetHealthDescriptions"]
        return [dict(entry) for entry in descriptions]

    def target_states(self) -> dict[str, str]:
        return {
            entry["Target"]["Id"]: entry["TargetHealth"]["State"] for entry in self.target_health()
        }

    def refresh_status(self) -> str | None:
        """The status of the group's newest instance refresh, if it ever had one."""
        refreshes = self._autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=self.deployment.asg_name, MaxRecords=1
        ).get("InstanceRefreshes", [])
        return str(refreshes[0]["Status"]) if refreshes else None

    def refresh(self, refresh_id: str) -> InstanceRefreshTypeDef:
        return self._autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=self.deployment.asg_name, InstanceRefreshIds=[refresh_id]
        )["InstanceRefreshes"][0]

    def refresh_started_since(self, since: dt.datetime) -> str | None:
        """The instance refresh of the group started at or after `since` (an apply's), if any."""
        refreshes = self._autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=self.deployment.asg_name
        ).get("InstanceRefreshes", [])
        for refresh in refreshes:
            if refresh["StartTime"] >= since:
                return str(refresh["InstanceRefreshId"])
        return None

    def activities_since(self, since: dt.datetime) -> list[str]:
        """The group's scaling activities since then, oldest first, one line each."""
        found = []
        pages = self._autoscaling.get_paginator("describe_scaling_activities").paginate(
            AutoScalingGroupName=self.deployment.asg_name
        )
        for page in pages:  # newest first: stop at the first page reaching back past `since`
            found += [a for a in page["Activities"] if a["StartTime"] >= since]
            if any(a["StartTime"] < since for a in page["Activities"]):
                break
        return [
            f"{a['StartTime']:%H:%M:%S} {a['Description']}: {a['Cause']}" for a in reversed(found)
        ]

    def group_cpu(self) -> float | None:
        """The group's latest CPUUtilization datapoint (AWS/EC2), if one was published."""
        return self._latest_metric(
            "AWS/EC2", "CPUUtilization", "AutoScalingGroupName", self.deployment.asg_name
        )

    def requests_per_target(self) -> float | None:
        """The target group's latest RequestCountPerTarget datapoint (AWS/ApplicationELB)."""
        return self._latest_metric(
            "AWS/ApplicationELB",
            "RequestCountPerTarget",
            "TargetGroup",
            self.deployment.target_group_name,
        )

    def _latest_metric(
        self, namespace: str, metric: str, dimension: str, value: str
    ) -> float | None:
        now = dt.datetime.now(dt.UTC)
        datapoints = self._cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": dimension, "Value": value}],
            StartTime=now - dt.timedelta(seconds=30),
            EndTime=now + dt.timedelta(seconds=5),
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        if not datapoints:
            return None
        latest = max(datapoints, key=lambda d: d["Timestamp"])
        return float(latest["Maximum"])
