"""An Auto Scaling group of the base image's web servers (tests/e2e/test_load_balancer.py's
user data) over two AZs, behind an ALB, made with boto3 against a sandbox's local region."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from tests.conftest import Sandbox
from tests.e2e.test_load_balancer import USER_DATA, health, web_balancer
from webfleet.localregion.images.baseimage import ensure_base_image
from webfleet.localregion.images.catalogue import debian_image
from webfleet.localregion.runtime.settings import RegionSettings


@dataclass(frozen=True)
class WebGroup:
    name: str
    target_group_arn: str
    dns_name: str
    zones: frozenset[str]


def make_web_group(
    sandbox: Sandbox,
    region: RegionSettings,
    name: str,
    *,
    deregistration_delay: int,
    grace_period: int = 15,
) -> WebGroup:
    """Two instances (min 2, max 3) with ELB health checks, one per AZ."""
    target = sandbox.target()
    ec2, elbv2, autoscaling = target.ec2(), target.elbv2(), target.autoscaling()
    ami = debian_image(ensure_base_image(region.image_cache, print)).ami_id
    subnets = sorted(
        (s for s in ec2.describe_subnets()["Subnets"] if s["DefaultForAz"]),
        key=lambda s: s["AvailabilityZone"],
    )[:2]
    group_arn, alb, _listener = web_balancer(
        elbv2,
        name,
        subnets[0]["VpcId"],
        [s["SubnetId"] for s in subnets],
        deregistration_delay=deregistration_delay,
    )
    ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": ami,
            "InstanceType": "t3.micro",
            "UserData": base64.b64encode(USER_DATA.encode()).decode(),
            "MetadataOptions": {"HttpTokens": "required"},
        },
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=2,
        MaxSize=3,
        DesiredCapacity=2,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
        TargetGroupARNs=[group_arn],
        HealthCheckType="ELB",
        HealthCheckGracePeriod=grace_period,
    )
    return WebGroup(
        name, group_arn, alb["DNSName"], frozenset(s["AvailabilityZone"] for s in subnets)
    )


def members(autoscaling: Any, name: str) -> list[dict[str, Any]]:
    (described,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    return list(described["Instances"])


def in_service(autoscaling: Any, name: str) -> set[str]:
    return {
        m["InstanceId"] for m in members(autoscaling, name) if m["LifecycleState"] == "InService"
    }


def serving(elbv2: Any, autoscaling: Any, group: WebGroup) -> bool:
    """Two InService members, each a healthy target, and no other target."""
    ids = in_service(autoscaling, group.name)
    targets = health(elbv2, group.target_group_arn)
    return len(ids) == 2 and targets == {i: "healthy" for i in ids}
