"""boto3 helpers for tests against the in-process API app (the `endpoint` fixture): clients,
and groups of instances made as Terraform makes them. No machines run: moto keeps the records."""

from __future__ import annotations

import base64
from typing import Any

import boto3
from botocore.config import Config

REGION = "eu-west-1"


def client(endpoint: str, service: str, region: str = REGION) -> Any:
    # boto3-stubs types clients per literal service name; this helper takes any name.
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # One attempt: a test sees exactly what the server answered, and retries would hide it.
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def create_group(
    endpoint: str,
    *,
    name: str = "web",
    capacity: int = 2,
    user_data: str = "#cloud-config\n",
    target_group_arn: str | None = None,
    subnet_ids: list[str] | None = None,
) -> str:
    """A launch template (version 1) and a group running `capacity` instances of it (in the
    first AZ, or over `subnet_ids`)."""
    ec2 = client(endpoint, "ec2")
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template_id: str = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "t3.micro",
            "UserData": base64.b64encode(user_data.encode()).decode(),
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    arguments: dict[str, Any] = {
        "AutoScalingGroupName": name,
        "LaunchTemplate": {"LaunchTemplateId": template_id, "Version": "1"},
        "MinSize": capacity,
        "MaxSize": capacity + 2,
        "DesiredCapacity": capacity,
    }
    if subnet_ids:
        arguments["VPCZoneIdentifier"] = ",".join(subnet_ids)
    else:
        arguments["AvailabilityZones"] = [f"{REGION}a"]
    if target_group_arn:
        arguments["TargetGroupARNs"] = [target_group_arn]
    client(endpoint, "autoscaling").create_auto_scaling_group(**arguments)
    return template_id


def target_group(endpoint: str, deregistration_delay: int = 0) -> str:
    """A target group in the default VPC; returns its ARN."""
    elbv2 = client(endpoint, "elbv2")
    vpc_id = client(endpoint, "ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
    arn: str = elbv2.create_target_group(
        Name="web-tg", Protocol="HTTP", Port=8080, VpcId=vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=arn,
        Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(deregistration_delay)}
        ],
    )
    return arn


def listener_forwarding_to(endpoint: str, target_group_arn: str) -> str:
    """An ALB in the default VPC's subnets with an HTTP listener forwarding to the target group
    (what a drain waits for: requests in flight); returns the listener's ARN."""
    elbv2 = client(endpoint, "elbv2")
    subnets = [s["SubnetId"] for s in client(endpoint, "ec2").describe_subnets()["Subnets"]]
    (balancer,) = elbv2.create_load_balancer(Name="web-alb", Subnets=subnets[:2])["LoadBalancers"]
    balancer_arn = balancer["LoadBalancerArn"]
    listener_arn: str = elbv2.create_listener(
        LoadBalancerArn=balancer_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": target_group_arn}],
    )["Listeners"][0]["ListenerArn"]
    return listener_arn


def group_with_target_group(endpoint: str, capacity: int = 2) -> tuple[str, str]:
    """A group registered in a target group with no deregistration delay: (template, TG ARN)."""
    target_group_arn = target_group(endpoint)
    template_id = create_group(endpoint, capacity=capacity, target_group_arn=target_group_arn)
    return template_id, target_group_arn


def group_members(endpoint: str, name: str = "web") -> list[dict[str, Any]]:
    """Every member the group lists, whatever its lifecycle state."""
    groups = client(endpoint, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[name]
    )["AutoScalingGroups"]
    return list(groups[0]["Instances"])


def group_instances(endpoint: str, name: str = "web") -> list[dict[str, Any]]:
    """The group's InService members (instances leaving it are listed as Terminating until
    they are drained and terminated, as on AWS)."""
    return [i for i in group_members(endpoint, name) if i["LifecycleState"] == "InService"]


def instance_states(endpoint: str, ids: set[str]) -> dict[str, str]:
    reservations = client(endpoint, "ec2").describe_instances(InstanceIds=sorted(ids))
    return {
        i["InstanceId"]: i["State"]["Name"]
        for r in reservations["Reservations"]
        for i in r["Instances"]
    }


def registered_targets(endpoint: str, target_group_arn: str) -> set[str]:
    described = client(endpoint, "elbv2").describe_target_health(TargetGroupArn=target_group_arn)
    return {d["Target"]["Id"] for d in described["TargetHealthDescriptions"]}
