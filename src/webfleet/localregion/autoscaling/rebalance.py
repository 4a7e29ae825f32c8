"""AZRebalance in the local region: a group whose InService instances are unevenly spread over
its subnets (more than one apart) is rebalanced as EC2 Auto Scaling does it, launch first: one
instance is launched in the zone with the fewest, and once it is ready (running, and healthy in
every target group of the group) one is taken from the zone with the most, drained, and
terminated. One instance at a time, only while the group is otherwise at rest (no instance
leaving or on standby, no instance refresh), and not while AZRebalance, Launch or Terminate is
suspended.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from webfleet.localregion.autoscaling import activities
from webfleet.localregion.autoscaling import members as group_members

log = logging.getLogger(__name__)

# An extra instance that is not ready by then is left to the health checks; balance is tried again.
READY_TIMEOUT_SECONDS = 600.0
_PENDING = "webfleet_rebalancing"  # on the group: (the extra instance's id, since when)
_NEEDED = frozenset({"AZRebalance", "Launch", "Terminate"})


def zone_counts(group: Any) -> Counter[str]:
    """InService instances per subnet of the group (subnets with none included)."""
    counts: Counter[str] = Counter({s: 0 for s in group_members.group_subnets(group)})
    for state in group.instance_states:
        subnet = str(getattr(state.instance, "subnet_id", None))
        if state.lifecycle_state == group_members.IN_SERVICE and subnet in counts:
            counts[subnet] += 1
    return counts


def imbalanced(counts: Counter[str]) -> bool:
    return len(counts) >= 2 and max(counts.values()) - min(counts.values()) > 1


def rebalance(backend: Any, group: Any, ready: Callable[[str], bool]) -> None:
    """One step of rebalancing `group`; `ready(instance_id)` says whether an instance can serve."""
    pending = getattr(group, _PENDING, None)
    if pending is not None:
        _finish(backend, group, pending, ready)
        return
    if _NEEDED & group_members.suspended(group) or not _at_rest(backend, group):
        return
    counts = zone_counts(group)
    if not imbalanced(counts):
        return
    before = {s.instance.id for s in group.instance_states}
    zones = ", ".join(sorted(_zone_names(backend, counts)))
    cause = (
        f"At {activities.stamp()} an instance was launched to rebalance instances across {zones}."
    )
    with activities.because(cause):
        group.replace_autoscaling_group_instances(1, group.get_propagated_tags())
    new = [s.instance.id for s in group.instance_states if s.instance.id not in before]
    if not new:
        return
    backend.update_attached_target_groups(group.name)
    log.info("%s: rebalancing zones %s: launched %s first", group.name, dict(counts), new[0])
    setattr(group, _PENDING, (new[0], time.monotonic()))


def _finish(
    backend: Any, group: Any, pending: tuple[str, float], ready: Callable[[str], bool]
) -> None:
    instance_id, since = pending
    member = any(s.instance.id == instance_id for s in group.instance_states)
    waited = time.monotonic() - since
    if member and not ready(instance_id) and waited < READY_TIMEOUT_SECONDS:
        return
    delattr(group, _PENDING)
    if not member or not ready(instance_id):
        log.info("%s: rebalancing gave up on %s", group.name, instance_id)
        return
    counts = zone_counts(group)
    most = max(counts, key=lambda subnet: counts[subnet])
    victims = [
        s
        for s in group.instance_states
        if s.lifecycle_state == group_members.IN_SERVICE
        and getattr(s.instance, "subnet_id", None) == most
        and s.instance.id != instance_id
    ]
    if not victims or counts[most] - min(counts.values()) < 1:
        return
    victim = min(victims, key=lambda s: str(getattr(s.instance, "launch_time", "")))
    why = (
        "an instance was taken out of service in response to an Availability Zone rebalancing "
        f"operation. At {activities.stamp()} instance {{instance_id}} was selected for termination."
    )
    group_members.retire(backend, group, [victim.instance.id], decrement=False, why=why)


def _at_rest(backend: Any, group: Any) -> bool:
    from webfleet.localregion.autoscaling import instance_refresh  # it imports group_health

    if any(s.lifecycle_state != group_members.IN_SERVICE for s in group.instance_states):
        return False
    if len(group.active_instances()) != int(group.desired_capacity or 0):
        return False
    refreshes = instance_refresh.instance_refreshes(backend).get(group.arn, [])
    return not any(r.active for r in refreshes)


def _zone_names(backend: Any, counts: Counter[str]) -> list[str]:
    names = []
    for subnet_id in counts:
        try:
            names.append(str(backend.ec2_backend.get_subnet(subnet_id).availability_zone))
        except Exception:  # a subnet deleted under the group
            names.append(subnet_id)
    return names
