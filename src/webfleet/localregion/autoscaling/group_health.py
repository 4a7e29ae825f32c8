"""What the local region's Auto Scaling does beyond moto's records.

(Instance refresh: instance_refresh.py; leaving instances drain first: members.py; moto's
Auto Scaling answers fixed for Terraform: api_fixes.py.)

- Spread: a group launches each new instance in the subnet (AZ) that has the fewest of its
  instances, as EC2 Auto Scaling balances across AZs (moto puts every one in the first subnet).
- Balance: AZRebalance, launch first (rebalance.py).
- Suspended processes: no launches while Launch is, no health checks while HealthCheck is, and
  unhealthy instances are only marked while ReplaceUnhealthy (or Terminate) is.
- Health: every few seconds each InService instance is checked as AWS does. EC2 checks always:
  an instance that stopped, is gone, or whose status checks fail (its machine died:
  ec2/status_checks.py) is replaced. With health check type ELB, after the grace
  period: an instance that any of the group's target groups reports `unhealthy` is marked
  Unhealthy and replaced (terminated; the group launches a new one to keep its capacity).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

from webfleet.localregion.api.patches import moto_patch
from webfleet.localregion.autoscaling import activities, rebalance
from webfleet.localregion.autoscaling import members as group_members
from webfleet.localregion.ec2 import status_checks
from webfleet.localregion.runtime.periodic import Periodic

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 2.0
_EC2_UNHEALTHY = ("stopping", "stopped", "shutting-down", "terminated")
_GONE = ("shutting-down", "terminated")
# AWS's causes of a health check replacement.
EC2_CAUSE = (
    "an instance was taken out of service in response to an EC2 health check indicating it has "
    "been terminated or stopped."
)
STATUS_CAUSE = (
    "an instance was taken out of service in response to an EC2 instance status checks failure."
)
USER_CAUSE = "an instance was taken out of service in response to a user health-check."
ELB_CAUSE = (
    "an instance was taken out of service in response to an ELB system health check failure."
)


class GroupHealth:
    """The `auto scaling` component: spreads launches and replaces unhealthy instances."""

    name = "auto scaling"

    def __init__(self) -> None:
        self._checks = Periodic("auto-scaling health checks", HEALTH_CHECK_SECONDS, check_groups)

    def start(self) -> None:
        spread_launches.apply()
        # What a killed daemon left running (its records restored by persistence/) carries on.
        group_members.resume_drains()
        from webfleet.localregion.autoscaling.instance_refresh import (  # imports this module
            resume_instance_refreshes,
        )

        resume_instance_refreshes()
        self._checks.start()

    def stop(self) -> None:
        self._checks.stop()


def check_groups() -> None:
    from moto.autoscaling.models import autoscaling_backends
    from moto.elbv2.models import elbv2_backends

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    backend: Any
    for account, region, backend in list(autoscaling_backends.iter_backends()):
        elbv2 = elbv2_backends[account][region]
        for group in list(backend.autoscaling_groups.values()):
            # AWS: with HealthCheck suspended nothing is found unhealthy; with ReplaceUnhealthy
            # (or Terminate) suspended unhealthy instances are marked and kept.
            stopped = group_members.suspended(group)
            for state in list(group.instance_states) if "HealthCheck" not in stopped else []:
                failed = _unhealthy_reason(group, state, now, elbv2)
                if failed is None:
                    continue
                if "ReplaceUnhealthy" in stopped or "Terminate" in stopped:
                    state.health_status = "Unhealthy"
                    continue
                _replace(backend, group, state, *failed)
            if "Launch" not in stopped and len(group.active_instances()) < int(
                group.desired_capacity or 0
            ):
                # Launches missed while Launch was suspended (or that failed) happen now.
                group.set_desired_capacity(group.desired_capacity)
            rebalance.rebalance(backend, group, functools.partial(_ready, group, elbv2=elbv2))


def _ready(group: Any, instance_id: str, elbv2: Any) -> bool:
    """Running, and healthy in every target group of the group."""
    state = next((s for s in group.instance_states if s.instance.id == instance_id), None)
    if state is None or state.instance.state != "running":
        return False
    return all(
        h.status == "healthy" for _, h in group_members.target_health(elbv2, group, instance_id)
    )


def _unhealthy_reason(
    group: Any, state: Any, now: dt.datetime, elbv2: Any
) -> tuple[str, str] | None:
    """What failed (kept on the instance) and AWS's cause for the activity history, or None."""
    if state.lifecycle_state != "InService":
        return None
    instance = state.instance
    if instance.state in _EC2_UNHEALTHY:
        return f"an EC2 health check: the instance is {instance.state}", EC2_CAUSE
    if problem := status_checks.impairment(instance):
        return f"EC2 status checks: the instance is impaired ({problem})", STATUS_CAUSE
    if state.health_status == "Unhealthy":
        return "a user health check: SetInstanceHealth marked it Unhealthy", USER_CAUSE
    if group.health_check_type != "ELB" or not past_grace_period(group, instance, now):
        return None
    for arn, status in group_members.target_health(elbv2, group, instance.id):
        if status.status == "unhealthy":
            detail = status.description or status.reason or "unhealthy"
            return f"an ELB health check: {detail} in {arn.split('/')[-2]}", ELB_CAUSE
    return None


def past_grace_period(group: Any, instance: Any, now: dt.datetime | None = None) -> bool:
    """Whether the group's health check grace period since the instance's launch is over
    (before that, Auto Scaling ignores what ELB health checks say of it)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    launched = instance.launch_time
    if isinstance(launched, dt.datetime) and launched.tzinfo is not None:
        launched = launched.astimezone(dt.UTC).replace(tzinfo=None)
    grace = dt.timedelta(seconds=int(group.health_check_grace_period or 0))
    return isinstance(launched, dt.datetime) and now - launched >= grace


def _replace(backend: Any, group: Any, state: Any, reason: str, cause: str) -> None:
    instance = state.instance
    log.info("%s: replacing %s, which failed %s", group.name, instance.id, reason)
    state.health_status = "Unhealthy"
    # Kept on the instance for whoever waited on it (an instance refresh says why it failed).
    instance.webfleet_replaced_because = reason
    # As EC2 Auto Scaling does: out of its target groups first (it drains unless it is gone
    # already), then terminated; the group launches a replacement at once.
    group_members.retire(
        backend, group, [instance.id], decrement=False, why=cause, drain=instance.state not in _GONE
    )


@moto_patch("autoscaling.spread_launches")
def spread_launches() -> None:
    """Launch each new instance in the group's subnet with the fewest of its InService (or
    pending) instances, and record each launch in the activity history."""
    from moto.autoscaling.models import FakeAutoScalingGroup

    original = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace_autoscaling_group_instances(
        self: Any, count_needed: int, propagated_tags: dict[str, str]
    ) -> None:
        processes = group_members.suspended(self)
        if "Launch" in processes:
            log.info("%s: Launch is suspended; %d not launched", self.name, count_needed)
            return
        before = {s.instance.id for s in self.instance_states}
        active = len(self.active_instances())
        subnets = group_members.group_subnets(self)
        if len(subnets) < 2 or count_needed <= 0:
            original(self, count_needed, propagated_tags)
        else:
            _launch_spread(self, original, subnets, count_needed, propagated_tags)
        new = [s for s in self.instance_states if s.instance.id not in before]
        for state in new:
            setattr(state, group_members.ADDED_ATTRIBUTE, "AddToLoadBalancer" not in processes)
        launched = [s.instance for s in new]
        activities.record_launches(self.autoscaling_backend, self, launched, active)

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances  # type: ignore[method-assign]


def _launch_spread(
    group: Any,
    launch: Any,
    subnets: list[str],
    count_needed: int,
    propagated_tags: dict[str, str],
) -> None:
    identifier = group.vpc_zone_identifier
    try:
        for _ in range(count_needed):
            fewest = least_used_subnet(group, subnets)
            # moto launches in the first subnet of the identifier.
            group.vpc_zone_identifier = ",".join([fewest, *(s for s in subnets if s != fewest)])
            launch(group, 1, dict(propagated_tags))
    finally:
        group.vpc_zone_identifier = identifier


def least_used_subnet(group: Any, subnets: list[str]) -> str:
    """The subnet with the fewest members that stay (a Terminating one is on its way out);
    ties go to the first listed."""
    counts = {subnet: 0 for subnet in subnets}
    for state in group.instance_states:
        subnet = getattr(state.instance, "subnet_id", None)
        if subnet in counts and group_members.in_service(state):
            counts[subnet] += 1
    return min(subnets, key=lambda subnet: (counts[subnet], subnets.index(subnet)))
