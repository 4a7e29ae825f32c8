"""An ALB of the local region is a real HAProxy: traffic through its DNS name, target health as
HAProxy's checks see it, rules, draining, and nothing left after `down`.

The targets are base-image machines whose user data serves a page naming the instance (the
baked app is tested in test_bake_and_boot); the API calls are the ones Terraform makes.
"""

from __future__ import annotations

import itertools
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Sandbox
from webfleet.localregion.ec2.machines import MachineRuntime
from webfleet.localregion.ec2.network import region_tag
from webfleet.localregion.elb.hosts_file import HostsBlock, default_hosts_file
from webfleet.localregion.elb.load_balancers import haproxy_processes
from webfleet.localregion.images.baseimage import ensure_base_image
from webfleet.localregion.images.catalogue import debian_image
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.settings import RegionSettings
from webfleet.targets import region_settings

pytestmark = [pytest.mark.e2e, pytest.mark.runtime_minutes(0.5)]

WAIT_SECONDS = 120.0
# A page with the instance id (read through IMDSv2) and a health file, served on :8000.
USER_DATA = """#cloud-config
runcmd:
  - - sh
    - -c
    - |
      mkdir -p /srv/www && cd /srv/www && echo ok > healthz
      token=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \\
        http://169.254.169.254/latest/api/token)
      curl -s -H "X-aws-ec2-metadata-token: $token" \\
        http://169.254.169.254/latest/meta-data/instance-id > index.html
      setsid python3 -m http.server 8000 >/dev/null 2>&1 < /dev/null &
"""


def wait_for(what: str, condition: Callable[[], bool], seconds: float = WAIT_SECONDS) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"timed out waiting for {what}"
        time.sleep(0.5)
    return time.monotonic() - started


def web_balancer(
    elbv2: Any, name: str, vpc_id: str, subnet_ids: list[str], deregistration_delay: int
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(target group ARN, ALB, listener): a group on :8000 checking /healthz every 5 s (2 to
    turn healthy or unhealthy), behind an ALB forwarding HTTP :80 to it."""
    group_arn = elbv2.create_target_group(
        Name=name,
        Protocol="HTTP",
        Port=8000,
        VpcId=vpc_id,
        HealthCheckPath="/healthz",
        HealthCheckIntervalSeconds=5,
        HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=group_arn,
        Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(deregistration_delay)}
        ],
    )
    alb = elbv2.create_load_balancer(Name=name, Subnets=subnet_ids)["LoadBalancers"][0]
    listener = elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )["Listeners"][0]
    return group_arn, alb, listener


@pytest.fixture(scope="module")
def region(sandbox: Sandbox) -> RegionSettings:
    settings = region_settings(sandbox.stack())
    daemon.up(settings)
    return settings


@pytest.fixture(scope="module")
def clients(sandbox: Sandbox, region: RegionSettings) -> tuple[Any, Any]:
    target = sandbox.target()
    return target.ec2(), target.elbv2()


@pytest.fixture(scope="module")
def balancer(region: RegionSettings, clients: tuple[Any, Any]) -> dict[str, Any]:
    ec2, elbv2 = clients
    ami = debian_image(ensure_base_image(region.image_cache, print)).ami_id
    instances = ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2, UserData=USER_DATA)
    ids = [instance["InstanceId"] for instance in instances["Instances"]]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["DefaultForAz"]]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    group_arn, alb, listener = web_balancer(
        elbv2, "web", vpc["VpcId"], subnets[:2], deregistration_delay=30
    )
    elbv2.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/admin*"]}],
        Actions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {
                    "StatusCode": "403",
                    "ContentType": "text/plain",
                    "MessageBody": "forbidden",
                },
            }
        ],
    )
    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[{"Id": i} for i in ids])
    return {"dns": alb["DNSName"], "group": group_arn, "ids": ids}


def health(elbv2: Any, group_arn: str) -> dict[str, str]:
    described = elbv2.describe_target_health(TargetGroupArn=group_arn)
    return {
        d["Target"]["Id"]: d["TargetHealth"]["State"] for d in described["TargetHealthDescriptions"]
    }


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode().strip()


def test_targets_go_from_initial_to_healthy(
    clients: tuple[Any, Any], balancer: dict[str, Any]
) -> None:
    _, elbv2 = clients
    states = set(health(elbv2, balancer["group"]).values())
    assert states <= {"initial", "healthy"}
    wait_for(
        "both targets healthy",
        lambda: set(health(elbv2, balancer["group"]).values()) == {"healthy"},
    )


def test_the_dns_name_resolves_to_the_balancer_and_requests_alternate(
    region: RegionSettings, clients: tuple[Any, Any], balancer: dict[str, Any]
) -> None:
    wait_for(
        "both targets healthy",
        lambda: set(health(clients[1], balancer["group"]).values()) == {"healthy"},
    )
    block = HostsBlock(default_hosts_file(), f"webfleet region {region_tag(region.state_dir)}")
    assert balancer["dns"] in block.entries()
    answers = [get(f"http://{balancer['dns']}/") for _ in range(6)]
    assert {status for status, _ in answers} == {200}
    bodies = [body for _, body in answers]
    assert set(bodies) == set(balancer["ids"])
    assert all(first != second for first, second in itertools.pairwise(bodies))


def test_a_fixed_response_rule_answers_before_the_default_action(
    balancer: dict[str, Any],
) -> None:
    assert get(f"http://{balancer['dns']}/admin/users") == (403, "forbidden")


def test_a_target_whose_health_check_fails_turns_unhealthy_and_gets_no_traffic(
    region: RegionSettings, clients: tuple[Any, Any], balancer: dict[str, Any]
) -> None:
    _, elbv2 = clients
    broken, working = balancer["ids"]
    wait_for(
        "both targets healthy",
        lambda: set(health(elbv2, balancer["group"]).values()) == {"healthy"},
    )
    machines = MachineRuntime(region.state_dir)
    machines.run_in(broken, ["rm", "/srv/www/healthz"])  # the page still answers; health 404s
    wait_for(
        "the target unhealthy", lambda: health(elbv2, balancer["group"])[broken] == "unhealthy"
    )
    described = elbv2.describe_target_health(
        TargetGroupArn=balancer["group"], Targets=[{"Id": broken}]
    )["TargetHealthDescriptions"][0]["TargetHealth"]
    assert described["Reason"] == "Target.ResponseCodeMismatch"
    assert {get(f"http://{balancer['dns']}/")[1] for _ in range(4)} == {working}


def test_a_deregistered_target_drains(clients: tuple[Any, Any], balancer: dict[str, Any]) -> None:
    _, elbv2 = clients
    broken = balancer["ids"][0]
    elbv2.deregister_targets(TargetGroupArn=balancer["group"], Targets=[{"Id": broken}])
    wait_for(
        "the target draining",
        lambda: (
            elbv2.describe_target_health(
                TargetGroupArn=balancer["group"], Targets=[{"Id": broken}]
            )["TargetHealthDescriptions"][0]["TargetHealth"]["State"]
            == "draining"
        ),
        seconds=10,
    )
    assert broken not in health(elbv2, balancer["group"])


def test_down_stops_haproxy_and_removes_the_hosts_entries(
    region: RegionSettings, balancer: dict[str, Any]
) -> None:
    directory = Path(region.state_dir) / "load-balancers"
    assert haproxy_processes(directory)
    daemon.down(region)
    assert haproxy_processes(directory) == []
    block = HostsBlock(default_hosts_file(), f"webfleet region {region_tag(region.state_dir)}")
    assert block.entries() == {}
    assert balancer["dns"] not in default_hosts_file().read_text()
