"""What the local region's Auto Scaling does beyond moto's records.

(Instance refresh: instance_refresh.py; leaving instances drain first: members.py; moto's
Auto Scaling answers fixed for Terraform: api_fixes.py.)

- Spread: a group launches each new instance in the subnet (AZ) that has the fewest of its
  instances, as EC2 Auto Scaling balances across AZs (moto puts every one in the first subnet).
- Health: every few seconds each InService instance is checked as AWS does. EC2 checks always:
  an instance that stopped or is gone is replaced. With health check type ELB, after the grace
  period: an instance that any of the group's target groups reports `unhealthy` is marked
  Unhealthy and replaced (terminated; the group launches a new one to keep its capacity).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from webfleet.localregion.api.patches import moto_patch
from webfleet.localregion.runtime.periodic import Periodic

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 2.0
_EC2_UNHEALTHY = ("stopping", "stopped", "shutting-down", "terminated")


class GroupHealth:
    """The `auto scaling` component: spreads launches and replaces unhealthy instances."""

    name = "auto scaling"

    def __init__(self) -> None:
        self._checks = Periodic("auto-scaling health checks", HEALTH_CHECK_SECONDS, check_groups)

    def start(self) -> None:
        spread_launches.apply()
        self._checks.start()

    def stop(self) -> None:
        self._checks.stop()


def check_groups() -> None:
    from moto.autoscaling.models import autoscaling_backends
    from moto.elbv2.models import elbv2_backends

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    backend: Any
    for account, region, backend in list(autoscaling_backends.iter_backends()):
        for group in list(backend.autoscaling_groups.values()):
            for state in list(group.instance_states):
                elbv2 = elbv2_backends[account][region]
                reason = _unhealthy_reason(group, state, now, elbv2)
                if reason is not None:
                    _replace(backend, elbv2, group, state, reason)


def _unhealthy_reason(group: Any, state: Any, now: dt.datetime, elbv2: Any) -> str | None:
    if state.lifecycle_state != "InService":
        return None
    instance = state.instance
    if instance.state in _EC2_UNHEALTHY:
        return f"an EC2 health check: the instance is {instance.state}"
    if group.health_check_type != "ELB" or not past_grace_period(group, instance, now):
        return None
    for arn in list(group.target_group_arns):
        try:
            (status,) = elbv2.describe_target_health(arn, [{"Id": instance.id}])
        except Exception:  # the target group went away under us
            continue
        if status.status == "unhealthy":
            detail = status.description or status.reason or "unhealthy"
            return f"an ELB health check: {detail} in {arn.split('/')[-2]}"
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


def _replace(backend: Any, elbv2: Any, group: Any, state: Any, reason: str) -> None:
    instance_id = state.instance.id
    log.info("%s: replacing %s, which failed %s", group.name, instance_id, reason)
    state.health_status = "Unhealthy"
    # Kept on the instance for whoever waited on it (an instance refresh says why it failed).
    state.instance.webfleet_replaced_because = reason
    # As EC2 Auto Scaling does: out of its target groups first (it drains), then terminated.
    for arn in list(group.target_group_arns):
        with contextlib.suppress(Exception):
            elbv2.deregister_targets(arn, [{"Id": instance_id}])
    backend.terminate_instance(instance_id, should_decrement=False)


@moto_patch("autoscaling.spread_launches")
def spread_launches() -> None:
    """Launch each new instance in the group's subnet with the fewest of its instances."""
    from moto.autoscaling.models import FakeAutoScalingGroup

    original = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace_autoscaling_group_instances(
        self: Any, count_needed: int, propagated_tags: dict[str, str]
    ) -> None:
        subnets = [s for s in (self.vpc_zone_identifier or "").split(",") if s]
        if len(subnets) < 2 or count_needed <= 0:
            original(self, count_needed, propagated_tags)
            return
        identifier = self.vpc_zone_identifier
        try:
            for _ in range(count_needed):
                counts = {subnet: 0 for subnet in subnets}
                for state in self.instance_states:
                    subnet = getattr(state.instance, "subnet_id", None)
                    if subnet in counts:
                        counts[subnet] += 1
                fewest = min(subnets, key=lambda subnet: (counts[subnet], subnets.index(subnet)))
                # moto launches in the first subnet of the identifier.
                self.vpc_zone_identifier = ",".join([fewest, *(s for s in subnets if s != fewest)])
                original(self, 1, dict(propagated_tags))
        finally:
            self.vpc_zone_identifier = identifier

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances  # type: ignore[method-assign]
