"""Auto Scaling in the local region: members spread over the group's AZs, and with ELB health
checks an instance that turns unhealthy after the grace period is replaced by a healthy one.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.e2e.test_load_balancer import USER_DATA, health, wait_for, web_balancer
from webfleet.localregion.ec2.machines import MachineRuntime
from webfleet.localregion.images.baseimage import ensure_base_image
from webfleet.localregion.images.catalogue import debian_image
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.settings import RegionSettings
from webfleet.targets import region_settings

pytestmark = [pytest.mark.e2e, pytest.mark.runtime_minutes(1)]


@pytest.fixture(scope="module")
def region(sandbox: Sandbox) -> Iterator[RegionSettings]:
    settings = region_settings(sandbox.stack())
    daemon.up(settings)
    yield settings
    daemon.down(settings)


@pytest.fixture(scope="module")
def group(sandbox: Sandbox, region: RegionSettings) -> dict[str, Any]:
    target = sandbox.target()
    ec2, elbv2, autoscaling = target.ec2(), target.elbv2(), target.autoscaling()
    ami = debian_image(ensure_base_image(region.image_cache, print)).ami_id
    subnets = sorted(
        (s for s in ec2.describe_subnets()["Subnets"] if s["DefaultForAz"]),
        key=lambda s: s["AvailabilityZone"],
    )[:2]
    vpc_id = subnets[0]["VpcId"]
    # A replaced instance drains for 5 s, then leaves the group's target health.
    group_arn, _alb, _listener = web_balancer(
        elbv2, "app", vpc_id, [s["SubnetId"] for s in subnets], deregistration_delay=5
    )
    ec2.create_launch_template(
        LaunchTemplateName="app",
        LaunchTemplateData={
            "ImageId": ami,
            "InstanceType": "t3.micro",
            "UserData": base64.b64encode(USER_DATA.encode()).decode(),
            "MetadataOptions": {"HttpTokens": "required"},
        },
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="app",
        LaunchTemplate={"LaunchTemplateName": "app", "Version": "$Latest"},
        MinSize=2,
        MaxSize=3,
        DesiredCapacity=2,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
        TargetGroupARNs=[group_arn],
        HealthCheckType="ELB",
        HealthCheckGracePeriod=15,
    )
    return {"target_group": group_arn, "zones": {s["AvailabilityZone"] for s in subnets}}


def members(autoscaling: Any) -> list[dict[str, Any]]:
    (described,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["app"])[
        "AutoScalingGroups"
    ]
    return list(described["Instances"])


def test_members_are_spread_over_the_groups_zones(sandbox: Sandbox, group: dict[str, Any]) -> None:
    autoscaling = sandbox.target().autoscaling()
    zones = {member["AvailabilityZone"] for member in members(autoscaling)}
    assert zones == group["zones"]


def test_an_instance_failing_elb_health_checks_is_replaced(
    sandbox: Sandbox, region: RegionSettings, group: dict[str, Any]
) -> None:
    target = sandbox.target()
    elbv2, autoscaling = target.elbv2(), target.autoscaling()
    arn = group["target_group"]
    wait_for("both members healthy", lambda: set(health(elbv2, arn).values()) == {"healthy"})
    original = {member["InstanceId"] for member in members(autoscaling)}
    broken = sorted(original)[0]
    MachineRuntime(region.state_dir).run_in(broken, ["rm", "/srv/www/healthz"])

    wait_for(
        "the broken member replaced: drained and gone, two healthy members",
        lambda: (
            broken not in health(elbv2, arn)
            and list(health(elbv2, arn).values()) == ["healthy", "healthy"]
        ),
        180,
    )
    current = {member["InstanceId"] for member in members(autoscaling)}
    assert broken not in current and len(current) == 2
    assert current - original  # a new instance took its place
