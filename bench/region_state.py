"""What keeping the region's records on disk costs: one save, and a write request answered with
and without its save (every write is saved before it is answered).

In-process, no machines: the API app served on loopback holds a deployed stack's worth of
records (VPC, subnets, security group, IAM role with an AWS managed policy, ALB, listener,
target group, launch template, a group of 4). Run on demand: .venv/bin/python bench/region_state.py
"""

from __future__ import annotations

import base64
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from webfleet.localregion.images.catalogue import DEBIAN_OWNER_ID, CatalogueImage
from webfleet.localregion.runtime.server import prepare_moto_environment
from webfleet.localregion.runtime.settings import RegionSettings

REGION = "us-east-1"
SAVES = 20
WRITES = 50
BASE_IMAGE = CatalogueImage(
    "debian-12-amd64-20261202-4039", "Debian 12 (20261202-4039)", DEBIAN_OWNER_ID, "x86_64"
)


def served(save_write: Callable[[], None] | None) -> contextlib.AbstractContextManager[str]:
    from webfleet.localregion.api.app import create_api_app
    from webfleet.localregion.api.server import served_in_thread

    return served_in_thread(create_api_app(save_write))


def client(endpoint: str, service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def deployed_stack(endpoint: str) -> str:
    """A stack's worth of records; returns the VPC id."""
    ec2, elbv2, iam = (client(endpoint, s) for s in ("ec2", "elbv2", "iam"))
    vpc_id: str = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.42.{n}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for n, zone in ((1, f"{REGION}a"), (2, f"{REGION}b"))
    ]
    ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc_id)
    iam.create_role(RoleName="app", AssumeRolePolicyDocument="{}")
    iam.attach_role_policy(
        RoleName="app", PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    )
    group_arn = elbv2.create_target_group(
        Name="app", Protocol="HTTP", Port=8000, VpcId=vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    balancer_arn = elbv2.create_load_balancer(Name="app", Subnets=subnets)["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    elbv2.create_listener(
        LoadBalancerArn=balancer_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )
    image_id = BASE_IMAGE.ami_id
    template_id = ec2.create_launch_template(
        LaunchTemplateName="app",
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "t3.micro",
            "UserData": base64.b64encode(b"#cloud-config\n").decode(),
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    client(endpoint, "autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="app",
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
        MinSize=4,
        MaxSize=6,
        DesiredCapacity=4,
        VPCZoneIdentifier=",".join(subnets),
        TargetGroupARNs=[group_arn],
    )
    return vpc_id


def median_ms(action: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    from webfleet.localregion.persistence.region_state import SavedRegion, state_file

    with tempfile.TemporaryDirectory() as directory:
        state_dir = Path(directory)
        # moto's settings as the daemon sets them (its AMI catalogue holds the base image only).
        prepare_moto_environment(RegionSettings(state_dir=state_dir), BASE_IMAGE)
        state = SavedRegion(state_dir, [])
        with served(None) as plain, served(state.save_answered_write) as durable:
            vpc_id = deployed_stack(plain)
            # A fresh SavedRegion has no digest yet: each save below pickles and writes.
            save_ms = median_ms(lambda: SavedRegion(state_dir, []).save(), SAVES)
            size_kb = state_file(state_dir).stat().st_size / 1024
            counter = iter(range(10**6))

            def tag(endpoint: str) -> Callable[[], object]:
                ec2 = client(endpoint, "ec2")
                return lambda: ec2.create_tags(
                    Resources=[vpc_id], Tags=[{"Key": "n", "Value": str(next(counter))}]
                )

            plain_ms = median_ms(tag(plain), WRITES)
            durable_ms = median_ms(tag(durable), WRITES)
    print(f"state file: {size_kb:.0f} KB; one save (pickle + write): {save_ms:.1f} ms")
    print(
        f"a write request (CreateTags): {plain_ms:.1f} ms unsaved, {durable_ms:.1f} ms saved "
        f"before its answer ({durable_ms / plain_ms:.1f}x)"
    )


if __name__ == "__main__":
    main()
