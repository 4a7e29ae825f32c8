"""How a group answers the ways its instances leave, through boto3 against the served API app:
EC2 terminations, users' terminations, standby, scale-in; its target groups and its activity
history follow, as on AWS. No machines: the health check pass (what the `auto scaling`
component runs every 2 s) is called by the test, and instances are moto's records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.unit.localregion.served_api import (
    REGION,
    client,
    create_group,
    group_members,
    group_with_target_group,
    instance_states,
    listener_forwarding_to,
    registered_targets,
    target_group,
)
from webfleet.localregion.autoscaling import group_health

pytestmark = pytest.mark.usefixtures("fresh_region")


def activities(endpoint: str, **arguments: Any) -> list[dict[str, Any]]:
    described = client(endpoint, "autoscaling").describe_scaling_activities(
        AutoScalingGroupName="web", **arguments
    )
    return list(described["Activities"])


def eventually(what: str, condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def member_ids(endpoint: str, state: str = "InService") -> set[str]:
    return {m["InstanceId"] for m in group_members(endpoint) if m["LifecycleState"] == state}


def group_and_victim(endpoint: str) -> tuple[str, set[str], str]:
    """A group of two in a target group: (its ARN, the members, the one a test takes away)."""
    _, arn = group_with_target_group(endpoint)
    old = member_ids(endpoint)
    return arn, old, sorted(old)[0]


def test_an_instance_terminated_through_ec2_is_replaced_and_the_replacement_registered(
    endpoint: str,
) -> None:
    arn, old, victim = group_and_victim(endpoint)

    client(endpoint, "ec2").terminate_instances(InstanceIds=[victim])
    # Until the group's health check sees it, it is still a member (as on AWS).
    assert victim in member_ids(endpoint)
    group_health.check_groups()

    current = member_ids(endpoint)
    assert victim not in current and len(current) == 2
    (replacement,) = current - old
    assert registered_targets(endpoint, arn) == current
    newest = activities(endpoint)[:2]
    assert newest[0]["Description"] == f"Launching a new EC2 instance: {replacement}"
    assert "increasing the capacity from 1 to 2" in newest[0]["Cause"]
    assert newest[1]["Description"] == f"Terminating EC2 instance: {victim}"
    assert (
        "in response to an EC2 health check indicating it has been terminated"
        in (newest[1]["Cause"])
    )
    assert newest[1]["StatusCode"] == "Successful"  # it was gone: nothing to drain


def test_a_stopped_member_is_replaced(endpoint: str) -> None:
    _, arn = group_with_target_group(endpoint)
    victim = sorted(member_ids(endpoint))[0]

    client(endpoint, "ec2").stop_instances(InstanceIds=[victim])
    group_health.check_groups()

    assert victim not in member_ids(endpoint) and len(member_ids(endpoint)) == 2
    assert victim not in registered_targets(endpoint, arn)
    eventually(
        "the stopped instance terminated",
        lambda: instance_states(endpoint, {victim}) == {victim: "terminated"},
    )


def test_terminate_in_group_drains_first_and_decrements_when_asked(endpoint: str) -> None:
    arn = target_group(endpoint, deregistration_delay=1)
    listener_forwarding_to(endpoint, arn)
    create_group(endpoint, capacity=2, target_group_arn=arn)
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=1)
    victim = sorted(member_ids(endpoint))[0]

    answer = autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=True
    )["Activity"]

    assert answer["Description"] == f"Terminating EC2 instance: {victim}"
    assert "in response to a user request, shrinking the capacity from 2 to 1." in answer["Cause"]
    assert answer["StatusCode"] == "WaitingForELBConnectionDraining"
    # Out of the target group at once, still running while it drains, listed as Terminating.
    assert victim not in registered_targets(endpoint, arn)
    assert member_ids(endpoint, "Terminating") == {victim}
    assert instance_states(endpoint, {victim}) == {victim: "running"}
    assert len(member_ids(endpoint)) == 1  # decremented: no replacement
    eventually(
        "the drained instance terminated",
        lambda: instance_states(endpoint, {victim}) == {victim: "terminated"},
    )
    assert victim not in {m["InstanceId"] for m in group_members(endpoint)}
    (done,) = [a for a in activities(endpoint) if a["ActivityId"] == answer["ActivityId"]]
    assert done["StatusCode"] == "Successful" and done["EndTime"] >= done["StartTime"]

    # At the minimum, a decrement is refused, as AWS refuses it.
    (last,) = member_ids(endpoint)
    with pytest.raises(ClientError, match="min size constraint"):
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=last, ShouldDecrementDesiredCapacity=True
        )


def test_terminate_in_group_without_decrement_launches_a_registered_replacement(
    endpoint: str,
) -> None:
    arn, _old, victim = group_and_victim(endpoint)

    client(endpoint, "autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=False
    )

    current = member_ids(endpoint)
    assert len(current) == 2 and victim not in current
    assert registered_targets(endpoint, arn) == current


def test_a_replacement_goes_to_the_zone_the_leaving_instance_was_in(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    subnets = sorted(
        (s for s in ec2.describe_subnets()["Subnets"] if s["DefaultForAz"]),
        key=lambda s: s["AvailabilityZone"],
    )[:2]
    arn = target_group(endpoint, deregistration_delay=2)
    create_group(
        endpoint, capacity=2, target_group_arn=arn, subnet_ids=[s["SubnetId"] for s in subnets]
    )

    def zones() -> dict[str, str]:
        return {m["InstanceId"]: m["AvailabilityZone"] for m in group_members(endpoint)}

    assert sorted(zones().values()) == sorted(s["AvailabilityZone"] for s in subnets)
    victim, victim_zone = sorted(zones().items())[0]

    # While the victim drains it is still in its zone; the replacement must go there anyway.
    client(endpoint, "autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=False
    )

    in_service = {
        m["InstanceId"]: m["AvailabilityZone"]
        for m in group_members(endpoint)
        if m["LifecycleState"] == "InService"
    }
    assert sorted(in_service.values()) == sorted(s["AvailabilityZone"] for s in subnets)
    assert victim_zone in in_service.values()


def test_a_drain_ends_when_no_listener_forwards_to_the_target_group_any_more(
    endpoint: str,
) -> None:
    # terraform destroy deletes the listener while a member drains (an instance refresh's, a
    # scale-in's): the group's delete waited out the whole 300 s delay for it.
    arn = target_group(endpoint, deregistration_delay=300)
    listener = listener_forwarding_to(endpoint, arn)
    create_group(endpoint, capacity=2, target_group_arn=arn)
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=1)
    victim = sorted(member_ids(endpoint))[0]
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=True
    )
    time.sleep(1.5)  # more than a drain check: it is still draining
    assert member_ids(endpoint, "Terminating") == {victim}

    client(endpoint, "elbv2").delete_listener(ListenerArn=listener)
    eventually(
        "the drain's end",
        lambda: instance_states(endpoint, {victim}) == {victim: "terminated"},
        seconds=5,
    )
    assert victim not in {m["InstanceId"] for m in group_members(endpoint)}


def one_member_in_standby(endpoint: str) -> tuple[str, str]:
    """A group of two in a target group, one member put in Standby: (the TG's ARN, that one)."""
    _, arn = group_with_target_group(endpoint)
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=1)
    resting = sorted(member_ids(endpoint))[0]
    autoscaling.enter_standby(
        AutoScalingGroupName="web", InstanceIds=[resting], ShouldDecrementDesiredCapacity=True
    )
    return arn, resting


def test_standby_leaves_the_target_groups_and_returns_to_them(endpoint: str) -> None:
    arn, resting = one_member_in_standby(endpoint)
    autoscaling = client(endpoint, "autoscaling")
    assert member_ids(endpoint, "Standby") == {resting}
    assert resting not in registered_targets(endpoint, arn)
    assert len(member_ids(endpoint)) == 1

    autoscaling.exit_standby(AutoScalingGroupName="web", InstanceIds=[resting])
    assert resting in member_ids(endpoint)
    assert registered_targets(endpoint, arn) == member_ids(endpoint)


@pytest.mark.parametrize("api", ["traffic sources", "target groups"])
def test_detaching_a_target_group_with_a_standby_member_deregisters_the_others(
    endpoint: str, api: str
) -> None:
    # moto deregistered every member and failed (InvalidTarget) on one already out of the
    # group (Standby, Terminating, a refresh's): terraform destroy stopped at the attachment.
    arn, _ = one_member_in_standby(endpoint)
    autoscaling = client(endpoint, "autoscaling")
    assert registered_targets(endpoint, arn) == member_ids(endpoint) != set()

    if api == "traffic sources":
        autoscaling.detach_traffic_sources(
            AutoScalingGroupName="web", TrafficSources=[{"Identifier": arn, "Type": "elbv2"}]
        )
    else:
        autoscaling.detach_load_balancer_target_groups(
            AutoScalingGroupName="web", TargetGroupARNs=[arn]
        )
    assert registered_targets(endpoint, arn) == set()
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"
    ]
    assert group["TargetGroupARNs"] == []
    # No deregistration delay in this group: nothing drains, the source is gone.
    assert autoscaling.describe_traffic_sources(AutoScalingGroupName="web")["TrafficSources"] == []


def test_user_requests_and_scale_in_are_in_the_history_with_their_causes(endpoint: str) -> None:
    _, arn = group_with_target_group(endpoint)
    autoscaling = client(endpoint, "autoscaling")

    autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    newest = activities(endpoint)[0]
    assert newest["Description"].startswith("Launching a new EC2 instance: i-")
    assert (
        "a user request explicitly set group desired capacity changing the desired "
        in (newest["Cause"])
    )
    assert "from 2 to 3" in newest["Cause"]

    autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=1, DesiredCapacity=1)
    shrunk = activities(endpoint)[:2]
    assert [a["Description"].split(": ")[0] for a in shrunk] == ["Terminating EC2 instance"] * 2
    for activity in shrunk:
        assert (
            "constraints to min: 1, max: 4, desired: 1 changing the desired capacity from 3 to 1"
            in activity["Cause"]
        )
        assert "shrinking the capacity from 3 to 1" in activity["Cause"]
        assert "was selected for termination" in activity["Cause"]
    assert len(member_ids(endpoint)) == 1 and registered_targets(endpoint, arn) == member_ids(
        endpoint
    )
    first = activities(endpoint)[-1]
    assert (
        "a user request created an AutoScalingGroup changing the desired capacity from 0 to 2"
        in first["Cause"]
    )


def test_the_history_is_paged_newest_first(endpoint: str) -> None:
    create_group(endpoint, capacity=2)
    client(endpoint, "autoscaling").set_desired_capacity(
        AutoScalingGroupName="web", DesiredCapacity=4
    )
    everything = activities(endpoint)
    assert len(everything) == 4
    assert [a["StartTime"] for a in everything] == sorted(
        (a["StartTime"] for a in everything), reverse=True
    )

    first = client(endpoint, "autoscaling").describe_scaling_activities(
        AutoScalingGroupName="web", MaxRecords=3
    )
    second = client(endpoint, "autoscaling").describe_scaling_activities(
        AutoScalingGroupName="web", MaxRecords=3, NextToken=first["NextToken"]
    )
    assert "NextToken" not in second
    assert [a["ActivityId"] for a in first["Activities"] + second["Activities"]] == [
        a["ActivityId"] for a in everything
    ]
    paginator = client(endpoint, "autoscaling").get_paginator("describe_scaling_activities")
    pages = list(paginator.paginate(AutoScalingGroupName="web", PaginationConfig={"PageSize": 1}))
    assert len(pages) == 4

    with pytest.raises(ClientError, match="maxRecords"):
        activities(endpoint, MaxRecords=101)


def two_zone_group(endpoint: str, capacity: int, target_group_arn: str | None = None) -> list[str]:
    """A group over the first two default subnets; returns their ids."""
    subnets = sorted(
        (s for s in client(endpoint, "ec2").describe_subnets()["Subnets"] if s["DefaultForAz"]),
        key=lambda s: s["AvailabilityZone"],
    )[:2]
    ids = [s["SubnetId"] for s in subnets]
    create_group(endpoint, capacity=capacity, target_group_arn=target_group_arn, subnet_ids=ids)
    return ids


def in_service_per_zone(endpoint: str) -> dict[str, int]:
    zones: dict[str, int] = {}
    for member in group_members(endpoint):
        if member["LifecycleState"] == "InService":
            zones[member["AvailabilityZone"]] = zones.get(member["AvailabilityZone"], 0) + 1
    return zones


def test_an_imbalance_is_rebalanced_launch_first(endpoint: str) -> None:
    two_zone_group(endpoint, capacity=4)
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=2)
    by_zone = {m["InstanceId"]: m["AvailabilityZone"] for m in group_members(endpoint)}
    zone_a = sorted(set(by_zone.values()))[0]
    # Both instances of one zone leave the group: 0 and 2.
    autoscaling.detach_instances(
        AutoScalingGroupName="web",
        InstanceIds=[i for i, z in by_zone.items() if z == zone_a],
        ShouldDecrementDesiredCapacity=True,
    )
    assert list(in_service_per_zone(endpoint).values()) == [2]

    group_health.check_groups()  # launches in the empty zone first, keeping the other two
    assert in_service_per_zone(endpoint) == {
        zone_a: 1,
        **{z: 2 for z in set(by_zone.values()) - {zone_a}},
    }
    launched = activities(endpoint)[0]
    assert launched["Description"].startswith("Launching a new EC2 instance: i-")
    assert "to rebalance instances across" in launched["Cause"]

    group_health.check_groups()  # the new one is ready: one of the crowded zone leaves
    assert sorted(in_service_per_zone(endpoint).values()) == [1, 1]
    terminated = activities(endpoint)[0]
    assert terminated["Description"].startswith("Terminating EC2 instance: i-")
    assert "Availability Zone rebalancing" in terminated["Cause"]
    group_health.check_groups()
    assert sorted(in_service_per_zone(endpoint).values()) == [1, 1]  # balanced: nothing more


def test_suspended_processes_hold_what_they_name(endpoint: str) -> None:
    arn = target_group(endpoint)
    create_group(endpoint, capacity=2, target_group_arn=arn)
    autoscaling = client(endpoint, "autoscaling")
    ec2 = client(endpoint, "ec2")

    # ReplaceUnhealthy: a stopped member is marked Unhealthy and kept.
    autoscaling.suspend_processes(AutoScalingGroupName="web", ScalingProcesses=["ReplaceUnhealthy"])
    victim = sorted(member_ids(endpoint))[0]
    ec2.stop_instances(InstanceIds=[victim])
    group_health.check_groups()
    (kept,) = [m for m in group_members(endpoint) if m["InstanceId"] == victim]
    assert (kept["LifecycleState"], kept["HealthStatus"]) == ("InService", "Unhealthy")

    # Launch: resumed ReplaceUnhealthy replaces the victim, but nothing is launched yet.
    autoscaling.suspend_processes(AutoScalingGroupName="web", ScalingProcesses=["Launch"])
    autoscaling.resume_processes(AutoScalingGroupName="web", ScalingProcesses=["ReplaceUnhealthy"])
    group_health.check_groups()
    assert len(member_ids(endpoint)) == 1
    autoscaling.resume_processes(AutoScalingGroupName="web", ScalingProcesses=["Launch"])
    group_health.check_groups()
    assert len(member_ids(endpoint)) == 2
    assert registered_targets(endpoint, arn) == member_ids(endpoint)

    # AddToLoadBalancer: an instance launched meanwhile stays out, even after the resume.
    autoscaling.suspend_processes(
        AutoScalingGroupName="web", ScalingProcesses=["AddToLoadBalancer"]
    )
    before = member_ids(endpoint)
    autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    (outside,) = member_ids(endpoint) - before
    autoscaling.resume_processes(AutoScalingGroupName="web", ScalingProcesses=["AddToLoadBalancer"])
    group_health.check_groups()
    assert outside not in registered_targets(endpoint, arn)
    assert before <= registered_targets(endpoint, arn)


def test_a_member_whose_machine_died_is_impaired_and_replaced(
    endpoint: str, tmp_path: Path
) -> None:
    from moto.ec2.models import ec2_backends

    from webfleet.localregion.ec2 import status_checks
    from webfleet.localregion.ec2.machine_records import Machine, MachineState

    _, arn = group_with_target_group(endpoint)
    dead, cut_off = sorted(member_ids(endpoint))
    records = {
        i.id: i
        for r in ec2_backends["123456789012"][REGION].reservations.values()
        for i in r.instances
    }

    class Machines:
        """The machines' view (no machines run here): one's process exited, one's veth is gone
        (no host link of that name exists on this host)."""

        def list(self) -> list[Machine]:
            return [
                Machine(dead, None, MachineState.STOPPED, "10.0.0.1", None, "ami-1", "a"),
                Machine(cut_off, 1, MachineState.RUNNING, "10.0.0.2", 0.0, "ami-1", "b"),
            ]

    status_checks.check_machines(Machines(), tmp_path, lambda: [records[dead], records[cut_off]])

    statuses = client(endpoint, "ec2").describe_instance_status(InstanceIds=[dead, cut_off])
    for status in statuses["InstanceStatuses"]:
        assert status["InstanceState"]["Name"] == "running"  # as on AWS: running, impaired
        assert status["SystemStatus"]["Status"] == "impaired"
        assert status["InstanceStatus"]["Details"][0]["Status"] == "failed"
    assert status_checks.impairment(records[dead]) == "its machine's process exited"
    assert status_checks.impairment(records[cut_off]) == "its network interface is gone"

    group_health.check_groups()
    current = member_ids(endpoint)
    assert not current & {dead, cut_off} and len(current) == 2
    assert registered_targets(endpoint, arn) == current
    causes = [
        a["Cause"] for a in activities(endpoint) if a["Description"].startswith("Terminating")
    ]
    assert len(causes) == 2 and all("EC2 instance status checks failure" in c for c in causes)


def start_refresh(endpoint: str, **preferences: Any) -> str:
    """A new template version for the group (as Terraform makes one) and a refresh to it."""
    ec2, autoscaling = client(endpoint, "ec2"), client(endpoint, "autoscaling")
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"
    ]
    template_id = group["LaunchTemplate"]["LaunchTemplateId"]
    version = ec2.create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion="1",
        LaunchTemplateData={"InstanceType": "t3.small"},
    )["LaunchTemplateVersion"]["VersionNumber"]
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": str(version)},
    )
    refresh_id: str = autoscaling.start_instance_refresh(
        AutoScalingGroupName="web", Preferences={"InstanceWarmup": 0, **preferences}
    )["InstanceRefreshId"]
    return refresh_id


def refresh_state(endpoint: str, refresh_id: str) -> dict[str, Any]:
    described = client(endpoint, "autoscaling").describe_instance_refreshes(
        AutoScalingGroupName="web", InstanceRefreshIds=[refresh_id]
    )
    return dict(described["InstanceRefreshes"][0])


def test_a_member_deregistered_by_hand_stays_out_and_a_refresh_replaces_it_first(
    endpoint: str,
) -> None:
    arn, _old, outside = group_and_victim(endpoint)
    elbv2 = client(endpoint, "elbv2")
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": outside}])
    # Whatever the group does next, it leaves the member a user took out alone (as AWS does).
    client(endpoint, "autoscaling").set_desired_capacity(
        AutoScalingGroupName="web", DesiredCapacity=2
    )
    group_health.check_groups()
    assert registered_targets(endpoint, arn) == member_ids(endpoint) - {outside}
    assert outside in member_ids(endpoint)

    refresh_id = start_refresh(endpoint, MinHealthyPercentage=50)
    eventually(
        "the refresh finished",
        lambda: refresh_state(endpoint, refresh_id)["Status"] not in ("Pending", "InProgress"),
        30,
    )
    assert refresh_state(endpoint, refresh_id)["Status"] == "Successful", refresh_state(
        endpoint, refresh_id
    )
    terminated = [
        a["Description"].split(": ")[1]
        for a in reversed(activities(endpoint))
        if a["Description"].startswith("Terminating") and "instance refresh" in a["Cause"]
    ]
    assert terminated[0] == outside  # the one that served nothing went first


def test_a_detached_instance_leaves_the_target_groups_and_keeps_running(endpoint: str) -> None:
    arn, _old, detached = group_and_victim(endpoint)
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=1)

    autoscaling.detach_instances(
        AutoScalingGroupName="web", InstanceIds=[detached], ShouldDecrementDesiredCapacity=True
    )

    assert detached not in {m["InstanceId"] for m in group_members(endpoint)}
    assert detached not in registered_targets(endpoint, arn)
    assert instance_states(endpoint, {detached}) == {detached: "running"}
    assert activities(endpoint)[0]["Description"] == f"Detaching EC2 instance: {detached}"


def test_set_instance_health_unhealthy_gets_the_instance_replaced(endpoint: str) -> None:
    arn, _old, marked = group_and_victim(endpoint)

    client(endpoint, "autoscaling").set_instance_health(InstanceId=marked, HealthStatus="Unhealthy")
    group_health.check_groups()

    current = member_ids(endpoint)
    assert marked not in current and len(current) == 2
    assert registered_targets(endpoint, arn) == current
    terminated = next(a for a in activities(endpoint) if a["Description"].endswith(marked))
    assert "in response to a user health-check" in terminated["Cause"]


def test_traffic_sources_attach_register_describe_and_detach(endpoint: str) -> None:
    create_group(endpoint, capacity=2)
    arn = target_group(endpoint)
    autoscaling = client(endpoint, "autoscaling")
    source = {"Identifier": arn, "Type": "elbv2"}

    autoscaling.attach_traffic_sources(AutoScalingGroupName="web", TrafficSources=[source])

    assert registered_targets(endpoint, arn) == member_ids(endpoint)
    (described,) = autoscaling.describe_traffic_sources(
        AutoScalingGroupName="web", TrafficSourceType="elbv2"
    )["TrafficSources"]
    assert (described["Identifier"], described["Type"]) == (arn, "elbv2")
    assert described["State"] in ("Added", "InService")
    # The same target group, as the older API sees it.
    (classic,) = autoscaling.describe_load_balancer_target_groups(AutoScalingGroupName="web")[
        "LoadBalancerTargetGroups"
    ]
    assert classic["LoadBalancerTargetGroupARN"] == arn
    # A new member is registered in it too.
    autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    assert registered_targets(endpoint, arn) == member_ids(endpoint)

    autoscaling.detach_traffic_sources(AutoScalingGroupName="web", TrafficSources=[source])
    eventually(
        "the detached source gone",
        lambda: (
            not autoscaling.describe_traffic_sources(AutoScalingGroupName="web")["TrafficSources"]
        ),
    )
    assert not registered_targets(endpoint, arn) & member_ids(endpoint)

    with pytest.raises(ClientError, match="not supported by the local region"):
        autoscaling.attach_traffic_sources(
            AutoScalingGroupName="web", TrafficSources=[{"Identifier": "x", "Type": "vpc-lattice"}]
        )


def test_metrics_collection_turns_off_and_the_type_lists_answer(endpoint: str) -> None:
    create_group(endpoint, capacity=1)
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.enable_metrics_collection(
        AutoScalingGroupName="web", Granularity="1Minute", Metrics=["GroupMinSize", "GroupMaxSize"]
    )
    autoscaling.disable_metrics_collection(AutoScalingGroupName="web", Metrics=["GroupMinSize"])
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"
    ]
    assert [m["Metric"] for m in group["EnabledMetrics"]] == ["GroupMaxSize"]
    autoscaling.disable_metrics_collection(AutoScalingGroupName="web")  # all
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"
    ]
    assert not group.get("EnabledMetrics")

    processes = autoscaling.describe_scaling_process_types()["Processes"]
    assert {"Launch", "AZRebalance", "AddToLoadBalancer"} <= {p["ProcessName"] for p in processes}
    assert autoscaling.describe_account_limits()["MaxNumberOfAutoScalingGroups"] > 0
    assert "Default" in autoscaling.describe_termination_policy_types()["TerminationPolicyTypes"]
