"""How instances leave an Auto Scaling group in the local region: drained, then terminated.

An instance leaving a group behind a load balancer (scale-in, instance refresh, a failed health
check, TerminateInstanceInAutoScalingGroup) is taken out of the group and deregistered from its
target groups at once, so the balancer sends it no new requests, and terminated only after the
target groups' deregistration delay, so requests in flight finish — what EC2 Auto Scaling and ELB
do. moto terminates at once and leaves the targets registered, which fails every request in
flight to the instance. Each leaving instance is a "Terminating EC2 instance" activity, in
progress until it is terminated.

An instance terminated through EC2 (TerminateInstances) stays a member until the group's health
check sees it, as on AWS: then it is replaced like any unhealthy instance (group_health.py).
moto instead drops it from the group at once and launches a replacement it never registers in
the target groups.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from webfleet.localregion.api.patches import moto_patch
from webfleet.localregion.autoscaling import activities
from webfleet.localregion.autoscaling.errors import client_error
from webfleet.localregion.elb.snapshot import forwarded_target_groups

log = logging.getLogger(__name__)

# After the deregistration delay: time for the balancer to have stopped using the target.
DRAIN_MARGIN_SECONDS = 2.0
DEFAULT_DEREGISTRATION_DELAY = 300
_DRAIN_CHECK_SECONDS = 1.0
TERMINATING = "Terminating"
IN_SERVICE = "InService"
STANDBY = "Standby"
# False on a member launched while AddToLoadBalancer was suspended.
ADDED_ATTRIBUTE = "webfleet_added_to_load_balancer"
# The ARNs of the target groups a member was registered in by its group.
REGISTERED_ATTRIBUTE = "webfleet_registered_in"


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


def retire(
    backend: Any,
    group: Any,
    instance_ids: Iterable[str],
    *,
    decrement: bool,
    why: str,
    drain: bool = True,
) -> list[Any]:
    """Take instances out of service and out of the target groups now; terminate them after the
    drain (none with drain=False: the instance is gone already). Meanwhile the group lists them as
    Terminating, as EC2 Auto Scaling does (so a delete of the group waits for them).

    decrement=False keeps the desired capacity, so the group launches replacements right away.
    `why` ends the activity's cause (AWS's wording; "{instance_id}" is replaced). Returns the
    "Terminating EC2 instance" activities.
    """
    wanted = set(instance_ids)
    states = [
        s
        for s in group.instance_states
        if s.instance.id in wanted and s.lifecycle_state != TERMINATING
    ]
    if not states:
        return []
    ids = [s.instance.id for s in states]
    seconds = drain_seconds(backend, group) if drain else 0.0
    for state in states:
        state.lifecycle_state = TERMINATING
    records = [
        activities.record_termination(
            backend,
            group,
            state.instance,
            why.replace("{instance_id}", state.instance.id),
            draining=seconds > 0,
        )
        for state in states
    ]
    for arn in list(group.target_group_arns):
        with contextlib.suppress(Exception):  # the target group went away under us
            backend.elbv2_backend.deregister_targets(arn, [{"Id": i} for i in ids])
    if decrement:
        group.desired_capacity = max(0, int(group.desired_capacity or 0) - len(ids))
    else:
        # Counts InService members only: launches the replacements.
        group.set_desired_capacity(group.desired_capacity)
    log.info("%s: %s leave the group; terminated in %.0fs", group.name, ", ".join(ids), seconds)
    terminate_later(backend, group, ids, seconds, records)
    return records


def terminate_later(
    backend: Any, group: Any, instance_ids: list[str], seconds: float, records: list[Any]
) -> None:
    """Terminate the instances (and finish their activities) once they drained for seconds."""
    drain = Drain(group, list(instance_ids), time.time() + max(0.0, seconds), records)
    drain.target_group_arns = tuple(group.target_group_arns)
    _drains(backend).append(drain)
    _terminate_after_drain(backend, drain)


@dataclass
class Drain:
    """Instances on their way out, kept on the backend: a restarted daemon ends their drains."""

    group: Any
    instance_ids: list[str]
    until: float  # seconds since the epoch
    records: list[Any]
    # Where they drain; None (a drain saved before this was kept): wait until `until`.
    target_group_arns: tuple[str, ...] | None = None

    def over(self, backend: Any) -> bool:
        """The delay has passed, or no balancer forwards to their target groups any more (the
        listener deleted, the group detached and its target group deleted): nothing to drain."""
        if time.time() >= self.until:
            return True
        if self.target_group_arns is None:
            return False
        balancers = list(backend.elbv2_backend.load_balancers.values())
        return not forwarded_target_groups(balancers) & set(self.target_group_arns)


def _drains(backend: Any) -> list[Drain]:
    drains: list[Drain] | None = getattr(backend, "webfleet_drains", None)
    if drains is None:
        drains = []
        backend.webfleet_drains = drains
    return drains


def resume_drains() -> None:
    """After a daemon restart: every drain the previous one left ends when it would have."""
    from moto.autoscaling.models import autoscaling_backends

    for _account, _region, backend in list(autoscaling_backends.iter_backends()):
        for drain in list(_drains(backend)):
            _terminate_after_drain(backend, drain)


def _terminate_after_drain(backend: Any, drain: Drain) -> None:
    group, instance_ids, records = drain.group, drain.instance_ids, drain.records

    def terminate() -> None:
        from moto.ec2.exceptions import InvalidInstanceIdError

        with contextlib.suppress(ValueError):
            _drains(backend).remove(drain)
        try:
            # Removed in place: a new list assigned here would drop a member another thread
            # (a refresh's or the health check's launch) appended meanwhile.
            for state in [s for s in group.instance_states if s.instance.id in instance_ids]:
                with contextlib.suppress(ValueError):
                    group.instance_states.remove(state)
            backend.ec2_backend.terminate_instances(instance_ids)
        except InvalidInstanceIdError:
            log.info("%s were gone before their drain ended (the region was reset)", instance_ids)
        except Exception:
            log.exception("terminating %s after the drain failed", instance_ids)
            for record in records:
                activities.finish(record, "Failed")
            return
        for record in records:
            activities.finish(record)

    def terminate_once_drained() -> None:
        while not drain.over(backend):
            time.sleep(min(_DRAIN_CHECK_SECONDS, max(0.0, drain.until - time.time())))
        terminate()

    if drain.over(backend):
        terminate()
        return
    threading.Thread(target=terminate_once_drained, name="webfleet-drain", daemon=True).start()


def shrinking(old: int, new: int) -> str:
    """The cause of a scale-in's terminations, after the reason the capacity changed."""
    return (
        "an instance was taken out of service in response to a difference between desired and "
        f"actual capacity, shrinking the capacity from {old} to {new}. At {activities.stamp()} "
        "instance {instance_id} was selected for termination."
    )


def target_health(elbv2: Any, group: Any, instance_id: str) -> list[tuple[str, Any]]:
    """(target group ARN, health) of the instance in each of the group's target groups; one
    that went away under us is left out."""
    found = []
    for arn in list(group.target_group_arns):
        try:
            (health,) = elbv2.describe_target_health(arn, [{"Id": instance_id}])
        except Exception:  # the target group went away under us
            continue
        found.append((arn, health))
    return found


def group_subnets(group: Any) -> list[str]:
    """The subnets of the group's VPCZoneIdentifier, in its order."""
    return [s for s in (group.vpc_zone_identifier or "").split(",") if s]


def suspended(group: Any) -> set[str]:
    """The group's suspended processes (SuspendProcesses)."""
    return {str(p["ProcessName"]) for p in getattr(group, "suspended_processes", None) or []}


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
    """Route every capacity decrease, and every termination a user asks the group for, through
    `retire`; leave EC2-terminated members to the group's health check; register only InService
    members (Standby and Terminating ones are out of the target groups, as on AWS)."""
    from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup

    original = FakeAutoScalingGroup.set_desired_capacity

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        target = self.min_size if new_capacity is None else new_capacity
        surplus = len(self.active_instances()) - (target or 0)  # InService members only
        backend = self.autoscaling_backend
        if surplus > 0 and self.name in backend.autoscaling_groups:
            victims = scale_in_victims(self, surplus)
            before = len(self.active_instances())
            self.desired_capacity = target
            # The victims stop counting as InService at once: nothing is launched in their place.
            retire(backend, self, victims, decrement=False, why=shrinking(before, target or 0))
            return
        original(self, new_capacity)

    def update_attached_target_groups(self: Any, group_name: str) -> None:
        # moto registers every member in every target group each time. AWS registers a member
        # once per target group (at launch, on attach, on leaving standby): one a user
        # deregistered stays out, a Terminating one is draining, a Standby one is out.
        group = self.autoscaling_groups[group_name]
        if not group.target_group_arns:
            return
        for target_group in self.elbv2_backend.describe_target_groups(
            target_group_arns=group.target_group_arns, load_balancer_arn=None, names=None
        ):
            joining, resting = [], []
            for state in group.instance_states:
                registered_in: set[str] = state.__dict__.setdefault(REGISTERED_ATTRIBUTE, set())
                if state.lifecycle_state == STANDBY:
                    if target_group.arn in registered_in:
                        resting.append({"Id": state.instance.id})
                        registered_in.discard(target_group.arn)
                elif (
                    state.lifecycle_state == IN_SERVICE
                    and getattr(state, ADDED_ATTRIBUTE, True)
                    and target_group.arn not in registered_in
                ):
                    joining.append({"Id": state.instance.id, "Port": target_group.port})
                    registered_in.add(target_group.arn)
            if joining:
                self.elbv2_backend.register_targets(target_group.arn, joining)
            if resting:
                self.elbv2_backend.deregister_targets(target_group.arn, resting)

    def detach_load_balancer_target_groups(
        self: Any, group_name: str, target_group_arns: list[str]
    ) -> None:
        group = self.autoscaling_groups[group_name]
        group.target_group_arns = [a for a in group.target_group_arns if a not in target_group_arns]
        for arn in target_group_arns:
            target_group = self.elbv2_backend.target_groups.get(arn)
            if target_group is None:
                continue
            # Only the members registered in it: moto deregisters every member and fails half
            # way (InvalidTarget) on one that left it already (Terminating, Standby, a refresh's).
            ids = [s.instance.id for s in group.instance_states]
            registered = [{"Id": i} for i in ids if i in target_group.targets]
            if registered:
                self.elbv2_backend.deregister_targets(arn, registered)
        # Attached again later, the group registers its members again.
        for state in group.instance_states:
            state.__dict__.setdefault(REGISTERED_ATTRIBUTE, set()).difference_update(
                target_group_arns
            )

    original_detach_instances = AutoScalingBackend.detach_instances

    def detach_instances(
        self: Any, group_name: str, instance_ids: list[str], should_decrement: bool
    ) -> Any:
        # AWS deregisters a detached instance from the group's target groups (it drains and
        # keeps running, no longer a member); moto leaves it registered.
        group = self.autoscaling_groups[group_name]
        for arn in list(group.target_group_arns):
            with contextlib.suppress(Exception):
                self.elbv2_backend.deregister_targets(arn, [{"Id": i} for i in instance_ids])
        answered = original_detach_instances(self, group_name, instance_ids, should_decrement)
        for activity in answered:
            activities.history(self).insert(0, activity)
        return answered

    def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
        group = _group_of(self, instance_id)
        old = int(group.desired_capacity or 0)
        if should_decrement and old <= int(group.min_size or 0):
            raise _validation_error(
                f"Currently, desiredSize equals minSize ({group.min_size}). Terminating instance "
                "without replacement will violate group's min size constraint. Either set "
                "shouldDecrementDesiredCapacity flag to false or lower group's min size."
            )
        why = "instance {instance_id} was taken out of service in response to a user request"
        why += f", shrinking the capacity from {old} to {old - 1}." if should_decrement else "."
        records = retire(self, group, [instance_id], decrement=should_decrement, why=why)
        if not records:
            raise _validation_error(f"Instance {instance_id} is already terminating.")
        return records[0]

    def notify_terminate_instances(self: Any, instance_ids: list[str]) -> None:
        """EC2 terminated these: the group's health check replaces its members among them."""

    FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity  # type: ignore[method-assign]
    AutoScalingBackend.update_attached_target_groups = update_attached_target_groups  # type: ignore[method-assign]
    AutoScalingBackend.terminate_instance = terminate_instance  # type: ignore[method-assign]
    AutoScalingBackend.detach_instances = detach_instances  # type: ignore[method-assign]
    AutoScalingBackend.detach_load_balancer_target_groups = detach_load_balancer_target_groups  # type: ignore[method-assign]
    AutoScalingBackend.notify_terminate_instances = notify_terminate_instances  # type: ignore[method-assign]


def _group_of(backend: Any, instance_id: str) -> Any:
    for group in backend.autoscaling_groups.values():
        if any(s.instance.id == instance_id for s in group.instance_states):
            return group
    raise _validation_error(
        f"Instance Id not found - No managed instance found for instance ID: {instance_id}"
    )


def _validation_error(message: str) -> Exception:
    return client_error("ValidationError", message)
