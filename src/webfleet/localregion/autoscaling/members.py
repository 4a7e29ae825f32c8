"""How instances leave an Auto Scaling group in the local region: drained, then terminated.

An instance leaving a group behind a load balancer (scale-in, instance refresh) is taken out of
the group and deregistered from its target groups at once, so the balancer sends it no new
requests, and terminated only after the target groups' deregistration delay, so requests in
flight finish — what EC2 Auto Scaling and ELB do. moto terminates at once and leaves the targets
registered, which fails every request in flight to the instance.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from webfleet.localregion.api.patches import moto_patch

log = logging.getLogger(__name__)

# After the deregistration delay: time for the balancer to have stopped using the target.
DRAIN_MARGIN_SECONDS = 2.0
DEFAULT_DEREGISTRATION_DELAY = 300
TERMINATING = "Terminating"


def deregistration_delay(backend: Any, group: Any) -> float:
    """The longest deregistration delay of the group's target groups (0 without any)."""
    delays = [0]
    for arn in list(group.target_group_arns):
        target_group = backend.elbv2_backend.target_groups.get(arn)
        if target_group is None:
            continue
        value = target_group.attributes.get(
            "deregistration_delay.timeout_seconds", DEFAULT_DEREGISTRATION_DELAY
        )
        delays.append(int(value))
    return float(max(delays))


def drain_seconds(backend: Any, group: Any) -> float:
    """How long a leaving instance keeps running after its deregistration."""
    delay = deregistration_delay(backend, group)
    return delay + DRAIN_MARGIN_SECONDS if group.target_group_arns else 0.0


def retire(backend: Any, group: Any, instance_ids: Iterable[str], *, decrement: bool) -> float:
    """Take instances out of service and out of the target groups now; terminate them after the
    drain. Meanwhile the group lists them as Terminating, as EC2 Auto Scaling does (so a delete
    of the group waits for them).

    decrement=False keeps the desired capacity, so the group launches replacements right away.
    Returns the seconds until the termination.
    """
    wanted = set(instance_ids)
    states = [
        s
        for s in group.instance_states
        if s.instance.id in wanted and s.lifecycle_state != TERMINATING
    ]
    if not states:
        return 0.0
    ids = [s.instance.id for s in states]
    drain = drain_seconds(backend, group)
    for state in states:
        state.lifecycle_state = TERMINATING
    for arn in list(group.target_group_arns):
        with contextlib.suppress(Exception):  # the target group went away under us
            backend.elbv2_backend.deregister_targets(arn, [{"Id": i} for i in ids])
    if decrement:
        group.desired_capacity = max(0, int(group.desired_capacity or 0) - len(ids))
    else:
        # Counts InService members only: launches the replacements.
        group.set_desired_capacity(group.desired_capacity)
    log.info("%s: %s leave the group; terminated in %.0fs", group.name, ", ".join(ids), drain)
    terminate_later(backend, group, ids, drain)
    return drain


def terminate_later(backend: Any, group: Any, instance_ids: list[str], seconds: float) -> None:
    def terminate() -> None:
        try:
            group.instance_states = [
                s for s in group.instance_states if s.instance.id not in instance_ids
            ]
            backend.ec2_backend.terminate_instances(instance_ids)
        except Exception:
            log.exception("terminating %s after the drain failed", instance_ids)

    if seconds <= 0:
        terminate()
        return
    timer = threading.Timer(seconds, terminate)
    timer.daemon = True
    timer.name = "webfleet-drain"
    timer.start()


def in_service(state: Any) -> bool:
    """A member that has not started leaving (InService, Pending, ...)."""
    return bool(state.lifecycle_state != TERMINATING)


def scale_in_victims(group: Any, count: int) -> list[str]:
    """Which instances a scale-in removes, after EC2 Auto Scaling's default termination policy:
    from the AZ with the most instances, the oldest launch template version, then the oldest."""
    states = [
        s
        for s in group.instance_states
        if in_service(s) and not getattr(s, "protected_from_scale_in", False)
    ]
    chosen: list[str] = []
    for _ in range(min(count, len(states))):
        per_zone = Counter(_zone(s) for s in states)
        victim = min(
            states,
            key=lambda s: (
                -per_zone[_zone(s)],
                getattr(s, "launch_template_version", None) or 0,
                str(getattr(s.instance, "launch_time", "")),
            ),
        )
        states.remove(victim)
        chosen.append(victim.instance.id)
    return chosen


def _zone(state: Any) -> str:
    placement = getattr(state.instance, "_placement", None)
    return str(getattr(placement, "zone", "") or "")


@moto_patch("autoscaling.drain_on_scale_in")
def drain_on_scale_in() -> None:
    """Route every capacity decrease of a group with target groups through `retire`."""
    from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup

    original = FakeAutoScalingGroup.set_desired_capacity

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        target = self.min_size if new_capacity is None else new_capacity
        surplus = len(self.active_instances()) - (target or 0)  # InService members only
        backend = self.autoscaling_backend
        if surplus > 0 and self.target_group_arns and self.name in backend.autoscaling_groups:
            victims = scale_in_victims(self, surplus)
            self.desired_capacity = target
            # The victims stop counting as InService at once: nothing is launched in their place.
            retire(backend, self, victims, decrement=False)
            return
        original(self, new_capacity)

    def update_attached_target_groups(self: Any, group_name: str) -> None:
        # moto registers every member; a Terminating one is draining and must stay out.
        group = self.autoscaling_groups[group_name]
        if not group.target_group_arns:
            return
        ids = [s.instance.id for s in group.instance_states if in_service(s)]
        for target_group in self.elbv2_backend.describe_target_groups(
            target_group_arns=group.target_group_arns, load_balancer_arn=None, names=None
        ):
            targets = [{"Id": i, "Port": target_group.port} for i in ids]
            self.elbv2_backend.register_targets(target_group.arn, targets)

    FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity  # type: ignore[method-assign]
    AutoScalingBackend.update_attached_target_groups = update_attached_target_groups  # type: ignore[method-assign]
