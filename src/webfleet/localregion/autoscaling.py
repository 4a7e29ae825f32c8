"""What the local region's Auto Scaling does beyond moto's records.

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
import threading
from typing import Any

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 2.0
_EC2_UNHEALTHY = ("stopping", "stopped", "shutting-down", "terminated")


class GroupHealth:
    """The `auto scaling` component: spreads launches and replaces unhealthy instances."""

    name = "auto scaling"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        _spread_launches()
        self._thread = threading.Thread(target=self._loop, name="auto-scaling", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)

    def _loop(self) -> None:
        while not self._stop.wait(HEALTH_CHECK_SECONDS):
            try:
                check_groups()
            except Exception:
                log.exception("Auto Scaling health checks failed")


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
    if group.health_check_type != "ELB":
        return None
    launched = instance.launch_time
    if isinstance(launched, dt.datetime) and launched.tzinfo is not None:
        launched = launched.astimezone(dt.UTC).replace(tzinfo=None)
    grace = dt.timedelta(seconds=int(group.health_check_grace_period or 0))
    if not isinstance(launched, dt.datetime) or now - launched < grace:
        return None
    for arn in list(group.target_group_arns):
        try:
            (status,) = elbv2.describe_target_health(arn, [{"Id": instance.id}])
        except Exception:  # the target group went away under us
            continue
        if status.status == "unhealthy":
            return f"an ELB health check: {status.reason or 'unhealthy'} in {arn.split('/')[-2]}"
    return None


def _replace(backend: Any, elbv2: Any, group: Any, state: Any, reason: str) -> None:
    instance_id = state.instance.id
    log.info("%s: replacing %s, which failed %s", group.name, instance_id, reason)
    state.health_status = "Unhealthy"
    # As EC2 Auto Scaling does: out of its target groups first (it drains), then terminated.
    for arn in list(group.target_group_arns):
        with contextlib.suppress(Exception):
            elbv2.deregister_targets(arn, [{"Id": instance_id}])
    backend.terminate_instance(instance_id, should_decrement=False)


def _spread_launches() -> None:
    from moto.autoscaling.models import FakeAutoScalingGroup

    if getattr(FakeAutoScalingGroup, "_webfleet_spread", False):
        return
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
    FakeAutoScalingGroup._webfleet_spread = True  # type: ignore[attr-defined]
