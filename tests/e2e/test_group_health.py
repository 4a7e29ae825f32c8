"""Auto Scaling in the local region with real machines and HAProxy: members spread over the
group's AZs; with ELB health checks an instance that turns unhealthy after the grace period is
replaced by a healthy one; and a member that leaves (terminated through EC2, its machine
killed, terminated through the group) is replaced and registered while a steady stream of
requests through the ALB loses none (HAProxy's retries and redispatch; see the README); and the
region's own parts (an ALB's HAProxy, a VPC's metadata service) killed come back in seconds.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.e2e.test_load_balancer import health, wait_for
from tests.e2e.web_group import WebGroup, in_service, make_web_group, members, serving
from webfleet import traffic
from webfleet.localregion.ec2.machines import MachineRuntime
from webfleet.localregion.elb.load_balancers import haproxy_processes
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.settings import RegionSettings

pytestmark = [pytest.mark.e2e, pytest.mark.runtime_minutes(3)]


@pytest.fixture(scope="module")
def region(sandbox: Sandbox) -> Iterator[RegionSettings]:
    with sandbox.running_region() as settings:
        yield settings


@pytest.fixture(scope="module")
def group(sandbox: Sandbox, region: RegionSettings) -> WebGroup:
    # A replaced instance drains for 5 s, then leaves the group's target health.
    return make_web_group(sandbox, region, "app", deregistration_delay=5)


def test_members_are_spread_over_the_groups_zones(sandbox: Sandbox, group: WebGroup) -> None:
    autoscaling = sandbox.target().autoscaling()
    zones = {member["AvailabilityZone"] for member in members(autoscaling, group.name)}
    assert zones == group.zones


def test_an_instance_failing_elb_health_checks_is_replaced(
    sandbox: Sandbox, region: RegionSettings, group: WebGroup
) -> None:
    target = sandbox.target()
    elbv2, autoscaling = target.elbv2(), target.autoscaling()
    arn = group.target_group_arn
    wait_for("both members healthy", lambda: set(health(elbv2, arn).values()) == {"healthy"})
    original = {member["InstanceId"] for member in members(autoscaling, group.name)}
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
    current = {member["InstanceId"] for member in members(autoscaling, group.name)}
    assert broken not in current and len(current) == 2
    assert current - original  # a new instance took its place


# --- faults under a steady stream of requests through the ALB ---------------------------------


def stream_through(group: WebGroup) -> traffic.RequestStream:
    listener = traffic.Listener("HTTP", 80, "forward")
    return traffic.RequestStream(lambda: traffic.fetch(group.dns_name, listener, "/")).start()


def replaced_under_load(
    sandbox: Sandbox, group: WebGroup, fault: Callable[[str], object]
) -> tuple[str, set[str], list[traffic.Sample]]:
    """Run `fault` on one member under a request stream; wait until the group serves from two
    healthy members again. Returns (the victim, the members after, the stream's samples)."""
    target = sandbox.target()
    elbv2, autoscaling = target.elbv2(), target.autoscaling()
    wait_for("two healthy members", lambda: serving(elbv2, autoscaling, group), 180)
    before = in_service(autoscaling, group.name)
    victim = sorted(before)[0]
    stream = stream_through(group)
    try:
        time.sleep(2)
        fault(victim)
        wait_for(
            f"{victim} replaced by a healthy, registered member",
            lambda: (
                victim not in in_service(autoscaling, group.name)
                and serving(elbv2, autoscaling, group)
            ),
            180,
        )
        time.sleep(2)
    finally:
        samples = stream.stop()
    return victim, in_service(autoscaling, group.name), samples


def assert_none_failed(samples: list[traffic.Sample]) -> None:
    failed = [s for s in samples if not s.answer.ok]
    print(f"\n{len(failed)} of {len(samples)} requests failed")  # shown with -s
    assert len(samples) > 20, len(samples)
    assert not failed, [(s.at, s.answer.describe()) for s in failed[:5]]


def newest_activities(sandbox: Sandbox, group: WebGroup) -> list[dict[str, Any]]:
    described = (
        sandbox.target()
        .autoscaling()
        .describe_scaling_activities(AutoScalingGroupName=group.name, MaxRecords=10)
    )
    return [dict(a) for a in described["Activities"]]


def test_a_member_terminated_through_ec2_is_replaced_without_a_failed_request(
    sandbox: Sandbox, group: WebGroup
) -> None:
    ec2 = sandbox.target().ec2()
    victim, after, samples = replaced_under_load(
        sandbox, group, lambda i: ec2.terminate_instances(InstanceIds=[i])
    )

    assert_none_failed(samples)
    activities = newest_activities(sandbox, group)
    terminated = next(a for a in activities if a["Description"].endswith(victim))
    assert "EC2 health check indicating it has been terminated or stopped" in terminated["Cause"]
    launched = next(a for a in activities if a["Description"].startswith("Launching"))
    assert launched["Description"].split(": ")[1] in after


def test_a_member_whose_machine_dies_is_replaced_without_a_failed_request(
    sandbox: Sandbox, region: RegionSettings, group: WebGroup
) -> None:
    runtime = MachineRuntime(region.state_dir)

    def kill_machine(instance_id: str) -> None:
        (machine,) = [m for m in runtime.list() if m.instance_id == instance_id]
        assert machine.pid is not None
        os.kill(machine.pid, signal.SIGKILL)  # the machine's systemd-nspawn, not EC2's doing

    victim, _after, samples = replaced_under_load(sandbox, group, kill_machine)

    assert_none_failed(samples)
    terminated = next(
        a for a in newest_activities(sandbox, group) if a["Description"].endswith(victim)
    )
    assert "EC2 instance status checks failure" in terminated["Cause"]
    # It stayed `running` (impaired) until the group terminated it, as on AWS.
    state = sandbox.target().ec2().describe_instances(InstanceIds=[victim])["Reservations"][0]
    assert state["Instances"][0]["State"]["Name"] in ("shutting-down", "terminated")


def test_terminate_in_the_group_drains_before_the_instance_goes(
    sandbox: Sandbox, group: WebGroup
) -> None:
    autoscaling = sandbox.target().autoscaling()

    def terminate(instance_id: str) -> None:
        answer = autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=False
        )["Activity"]
        assert answer["StatusCode"] == "WaitingForELBConnectionDraining"

    victim, _after, samples = replaced_under_load(sandbox, group, terminate)

    assert_none_failed(samples)
    terminated = next(
        a for a in newest_activities(sandbox, group) if a["Description"].endswith(victim)
    )
    assert "in response to a user request" in terminated["Cause"]


def test_a_rebooted_member_restarts_stays_running_and_loses_no_request(
    sandbox: Sandbox, region: RegionSettings, group: WebGroup
) -> None:
    target = sandbox.target()
    ec2, elbv2, autoscaling = target.ec2(), target.elbv2(), target.autoscaling()
    wait_for("two healthy members", lambda: serving(elbv2, autoscaling, group), 180)
    runtime = MachineRuntime(region.state_dir)
    rebooted = sorted(in_service(autoscaling, group.name))[0]

    def started_at() -> float | None:
        return next(m.started_at for m in runtime.list() if m.instance_id == rebooted)

    before = started_at()
    stream = stream_through(group)
    try:
        ec2.reboot_instances(InstanceIds=[rebooted])
        wait_for("the machine booted again", lambda: started_at() != before, 60)
        states = set()
        for _ in range(10):  # the instance never leaves `running`, nor fails its status checks
            (status,) = ec2.describe_instance_status(InstanceIds=[rebooted])["InstanceStatuses"]
            states.add((status["InstanceState"]["Name"], status["SystemStatus"]["Status"]))
            time.sleep(0.5)
        wait_for("two healthy members again", lambda: serving(elbv2, autoscaling, group), 180)
    finally:
        samples = stream.stop()
    assert states == {("running", "ok")}, states
    assert_none_failed(samples)


# --- the local region's own parts, killed ---------------------------------------------------


def test_a_killed_haproxy_is_restarted_within_seconds(
    sandbox: Sandbox, region: RegionSettings, group: WebGroup
) -> None:
    target = sandbox.target()
    elbv2, autoscaling = target.elbv2(), target.autoscaling()
    wait_for("two healthy members", lambda: serving(elbv2, autoscaling, group), 180)
    before = in_service(autoscaling, group.name)
    (pid,) = haproxy_processes(region.state_dir / "load-balancers")
    os.kill(pid, signal.SIGKILL)
    listener = traffic.Listener("HTTP", 80, "forward")

    recovered = wait_for(
        "the balancer answering again",
        lambda: (
            traffic.fetch(group.dns_name, listener, "/").ok
            and haproxy_processes(region.state_dir / "load-balancers") != [pid]
        ),
        10,
    )
    print(f"\nHAProxy answered again {recovered:.1f} s after it was killed")
    # As an ALB node failing: its targets stay healthy (the new HAProxy starts from their last
    # states), so the group replaces nobody.
    seen = set()
    for _ in range(10):
        seen |= set(health(elbv2, group.target_group_arn).values())
        time.sleep(0.5)
    assert seen == {"healthy"}, seen
    assert in_service(autoscaling, group.name) == before


def test_a_killed_metadata_service_is_restarted_within_seconds(
    sandbox: Sandbox, region: RegionSettings, group: WebGroup
) -> None:
    target = sandbox.target()
    autoscaling = target.autoscaling()
    # As the other tests here: start from a serving fleet (a member replaced by the test before
    # may still be booting).
    wait_for("two healthy members", lambda: serving(target.elbv2(), autoscaling, group), 180)
    member = sorted(in_service(autoscaling, group.name))[0]
    runtime = MachineRuntime(region.state_dir)
    vpc_id = runtime.spec(member).vpc_id
    pid_file = region.state_dir / "networks" / vpc_id / "imds.pid"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    token = [
        "curl", "-sf", "-m", "2", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60",
        "http://169.254.169.254/latest/api/token",
    ]  # fmt: skip

    recovered = wait_for(
        "the metadata service answering the instance again",
        lambda: runtime.run_in(member, token, timeout=5).returncode == 0,
        15,
    )
    print(f"\nIMDS answered again {recovered:.1f} s after it was killed")


def test_a_killed_api_daemon_comes_back_with_local_up_and_keeps_everything(
    sandbox: Sandbox, region: RegionSettings, group: WebGroup
) -> None:
    target = sandbox.target()
    ec2, elbv2, autoscaling = target.ec2(), target.elbv2(), target.autoscaling()
    wait_for("two healthy members", lambda: serving(elbv2, autoscaling, group), 180)
    runtime = MachineRuntime(region.state_dir)
    members_before = in_service(autoscaling, group.name)
    booted_before = {m.instance_id: m.started_at for m in runtime.list()}
    activities_before = newest_activities(sandbox, group)
    stream = stream_through(group)
    try:
        time.sleep(3)  # the daemon saves its records every second
        killed = daemon.status(region).pid
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        wait_for("the daemon gone", lambda: not daemon.status(region).running, 10)
        daemon.up(region)  # what `invoke local.up` runs
        wait_for("two healthy members", lambda: serving(elbv2, autoscaling, group), 60)
        time.sleep(2)
    finally:
        samples = stream.stop()

    # The balancer served throughout; the new daemon answers with the same records, and the
    # same machines (never rebooted) serve them.
    assert_none_failed(samples)
    assert in_service(autoscaling, group.name) == members_before
    assert {m.instance_id: m.started_at for m in runtime.list()} == booted_before
    assert newest_activities(sandbox, group)[: len(activities_before)] == activities_before
    (described,) = elbv2.describe_target_groups(TargetGroupArns=[group.target_group_arn])[
        "TargetGroups"
    ]
    assert described["LoadBalancerArns"]
    # ...and it still acts on them: a member terminated through EC2 is replaced.
    victim, after, samples = replaced_under_load(
        sandbox, group, lambda instance_id: ec2.terminate_instances(InstanceIds=[instance_id])
    )
    assert_none_failed(samples)
    assert victim not in after
