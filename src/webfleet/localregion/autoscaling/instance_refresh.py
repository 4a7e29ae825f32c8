"""Instance refresh in the local region: a rolling replacement of a group's machines.

StartInstanceRefresh, DescribeInstanceRefreshes, CancelInstanceRefresh and
RollbackInstanceRefresh, which moto lacks. Each refresh runs on its own thread, as on AWS:

- Instances not on the desired launch template version (all of them, unless SkipMatching) are
  replaced in batches. With MaxHealthyPercentage 100 a batch leaves first: as many as keep
  MinHealthyPercentage of the desired capacity in service. Above 100 the new instances of a
  batch launch first and the old leave once they are ready.
- Leaving instances are deregistered and drained for the deregistration delay before they are
  terminated (group_members.retire): requests in flight finish.
- A new instance is ready once it is running and, with ELB health checks, healthy in every
  target group, then warmed up for InstanceWarmup seconds.
- A new instance that fails (an unhealthy target after the group's health check grace period,
  stopped, replaced, or not healthy in time) fails the refresh; with AutoRollback the refresh
  rolls back: the group returns to the launch template version its instances ran before, and
  instances launched from the new one are replaced.
- CheckpointPercentages pause the refresh for CheckpointDelay seconds; a cancel or a rollback
  request takes effect at the next step.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webfleet import refresh_status
from webfleet.localregion.autoscaling import activities
from webfleet.localregion.autoscaling import members as group_members
from webfleet.localregion.autoscaling.errors import client_error
from webfleet.localregion.autoscaling.group_health import past_grace_period

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
DEFAULT_MIN_HEALTHY = 90
DEFAULT_MAX_HEALTHY = 100
DEFAULT_CHECKPOINT_DELAY = 3600
# On top of grace period and warmup: how long a new instance may take to become healthy.
READY_TIMEOUT_SECONDS = 300
# AWS's cause of an instance refresh's launches and terminations.
REFRESH_CAUSE = (
    "At {stamp} an instance was taken out of service in response to an instance refresh."
)
_EC2_FAILED = ("stopping", "stopped", "shutting-down", "terminated")


class RefreshFailed(Exception):
    """A new instance did not become ready; the message says which and why."""


class RefreshStopped(Exception):
    """A cancel or rollback request (or a deleted group) ends the current pass."""


@dataclass
class InstanceRefresh:
    """One instance refresh of a group, as DescribeInstanceRefreshes reports it."""

    instance_refresh_id: str
    auto_scaling_group_name: str
    strategy: str
    preferences: dict[str, Any]
    desired_configuration: dict[str, Any] | None
    instances_to_update: int
    start_time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    end_time: dt.datetime | None = None
    status: str = "Pending"
    status_reason: str = ""
    percentage_complete: int = 0
    rollback_reason: str | None = None
    rollback_start_time: dt.datetime | None = None
    # The launch template version before it: what a rollback returns to.
    previous_version: int | None = None
    # While a launch-first batch runs: the desired capacity before it (a restarted daemon's
    # worker puts it back before it starts over).
    capacity_before_batch: int | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    rollback_requested: threading.Event = field(default_factory=threading.Event)

    def __getstate__(self) -> dict[str, Any]:
        # Saved with moto's records (persistence/): an Event does not pickle, its flag does.
        state = dict(self.__dict__)
        for name in ("cancel_requested", "rollback_requested"):
            state[name] = state[name].is_set()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in ("cancel_requested", "rollback_requested"):
            event = threading.Event()
            if state[name]:
                event.set()
            state[name] = event
        self.__dict__.update(state)

    def as_shape(self) -> dict[str, Any]:
        """The InstanceRefresh shape of the Auto Scaling API."""
        shape: dict[str, Any] = {
            "InstanceRefreshId": self.instance_refresh_id,
            "AutoScalingGroupName": self.auto_scaling_group_name,
            "Status": self.status,
            "StatusReason": self.status_reason,
            "StartTime": self.start_time,
            "PercentageComplete": self.percentage_complete,
            "InstancesToUpdate": self.instances_to_update,
            "Strategy": self.strategy,
        }
        if self.preferences:
            shape["Preferences"] = self.preferences
        if self.end_time is not None:
            shape["EndTime"] = self.end_time
        if self.desired_configuration:
            shape["DesiredConfiguration"] = self.desired_configuration
        if self.rollback_start_time is not None:
            shape["RollbackDetails"] = {
                "RollbackReason": self.rollback_reason or "",
                "RollbackStartTime": self.rollback_start_time,
            }
        return shape

    @property
    def active(self) -> bool:
        return self.status in refresh_status.IN_PROGRESS

    def finish(self, status: str, reason: str | None = None) -> None:
        self.status = status
        if reason is not None:
            self.status_reason = reason
        self.end_time = dt.datetime.now(dt.UTC)
        log.info(
            "refresh %s of %s: %s %s",
            self.instance_refresh_id,
            self.auto_scaling_group_name,
            status,
            self.status_reason,
        )


def instance_refreshes(backend: Any) -> dict[str, list[InstanceRefresh]]:
    """The refreshes of a region's Auto Scaling backend, by group ARN, newest first.

    Keyed by ARN (which holds a per-group UUID): a group deleted and created again under the same
    name starts without the old group's history. Kept on the backend object so that moto's reset
    (which rebuilds backends) clears them too.
    """
    store: dict[str, list[InstanceRefresh]] | None = getattr(
        backend, "webfleet_instance_refreshes", None
    )
    if store is None:
        store = {}
        backend.webfleet_instance_refreshes = store
    return store


def find_group(backend: Any, name: str | None) -> Any:
    group = backend.autoscaling_groups.get(name or "")
    if group is None:
        raise client_error("ValidationError", f"AutoScalingGroup name not found - {name}")
    return group


def template_version(group: Any) -> int | None:
    """The number of the launch template version the group launches (None without a template)."""
    template = group.ec2_launch_template
    if template is None:
        return None
    number: int = template.get_version(group.launch_template_version).number
    return number


def instance_version(state: Any) -> int | None:
    version: int | None = getattr(state, "launch_template_version", None)
    return version


# --- API actions ------------------------------------------------------------------------------


def start_instance_refresh(
    backend: Any,
    group_name: str,
    strategy: str,
    preferences: dict[str, Any],
    desired_configuration: dict[str, Any] | None,
) -> InstanceRefresh:
    """Validate, record and start a rolling refresh (it runs on its own thread)."""
    group = find_group(backend, group_name)
    runs = instance_refreshes(backend).setdefault(group.arn, [])
    if any(run.active for run in runs):
        raise client_error(
            "InstanceRefreshInProgress",
            f"An Instance Refresh is already in progress and blocks the execution of this "
            f"Instance Refresh for Auto Scaling group {group.name}.",
        )
    if strategy != "Rolling":
        raise client_error("ValidationError", f"Unsupported instance refresh strategy {strategy}")
    min_healthy = int(preferences.get("MinHealthyPercentage", DEFAULT_MIN_HEALTHY))
    max_healthy = int(preferences.get("MaxHealthyPercentage", DEFAULT_MAX_HEALTHY))
    if min_healthy >= 100 and max_healthy <= 100:
        raise client_error(
            "ValidationError",
            "MinHealthyPercentage 100 needs a MaxHealthyPercentage above 100 "
            "(new instances must launch before old ones leave).",
        )
    previous_version = _common_version(group)
    desired_template = (desired_configuration or {}).get("LaunchTemplate")
    if desired_template:
        _use_template(group, desired_template)
    refresh = InstanceRefresh(
        instance_refresh_id=str(uuid.uuid4()),
        auto_scaling_group_name=group.name,
        strategy=strategy,
        preferences=preferences,
        desired_configuration=desired_configuration,
        instances_to_update=len(_outdated(group, bool(preferences.get("SkipMatching")))),
        previous_version=previous_version,
    )
    runs.insert(0, refresh)
    _run_worker(RefreshWorker(backend, group, refresh), RefreshWorker.run)
    return refresh


def resume_instance_refreshes() -> None:
    """After a daemon restart: each refresh the previous daemon was running carries on."""
    from moto.autoscaling.models import autoscaling_backends

    backend: Any
    for _account, _region, backend in list(autoscaling_backends.iter_backends()):
        for group in list(backend.autoscaling_groups.values()):
            for refresh in instance_refreshes(backend).get(group.arn, []):
                if refresh.active:
                    log.info("resuming refresh %s of %s", refresh.instance_refresh_id, group.name)
                    _run_worker(RefreshWorker(backend, group, refresh), RefreshWorker.resume)


def _run_worker(worker: RefreshWorker, how: Callable[[RefreshWorker], None]) -> None:
    name = f"refresh-{worker.group.name}"
    threading.Thread(target=how, args=(worker,), name=name, daemon=True).start()


def describe_instance_refreshes(
    backend: Any, group_name: str, refresh_ids: list[str]
) -> list[InstanceRefresh]:
    """The group's refreshes, newest first, optionally only those with the given IDs."""
    group = find_group(backend, group_name)
    runs = instance_refreshes(backend).get(group.arn, [])
    return [run for run in runs if not refresh_ids or run.instance_refresh_id in refresh_ids]


def _active_refresh(backend: Any, group_name: str) -> InstanceRefresh:
    group = find_group(backend, group_name)
    for run in instance_refreshes(backend).get(group.arn, []):
        if run.active:
            return run
    raise client_error(
        "ActiveInstanceRefreshNotFound",
        f"No in progress or pending Instance Refresh found for Auto Scaling group {group.name}",
    )


def cancel_instance_refresh(backend: Any, group_name: str) -> InstanceRefresh:
    """Ask the group's active refresh to stop after its current step (replacements made stay)."""
    run = _active_refresh(backend, group_name)
    if run.status != "RollbackInProgress":
        run.status = "Cancelling"
    run.cancel_requested.set()
    return run


def rollback_instance_refresh(backend: Any, group_name: str) -> InstanceRefresh:
    """Ask the group's active refresh to roll back to the configuration before it."""
    run = _active_refresh(backend, group_name)
    if run.status == "RollbackInProgress":
        raise client_error(
            "IrreversibleInstanceRefresh", "The Instance Refresh is already rolling back."
        )
    run.rollback_requested.set()
    return run


# --- the rolling replacement ------------------------------------------------------------------


class RefreshWorker:
    """Runs one refresh to its end: Successful, Failed, Cancelled, or rolled back."""

    def __init__(self, backend: Any, group: Any, refresh: InstanceRefresh) -> None:
        self.backend = backend
        self.group = group
        self.refresh = refresh
        self.previous_version = refresh.previous_version
        self.preferences = refresh.preferences

    def resume(self) -> None:
        """Carry on with a refresh a killed daemon was running: a launch-first batch it was in
        is undone (the capacity put back), then the refresh (or its rollback) starts over with
        what is still outdated."""
        refresh = self.refresh
        if refresh.capacity_before_batch is not None:
            self.group.set_desired_capacity(refresh.capacity_before_batch)
            refresh.capacity_before_batch = None
        if refresh.status == "RollbackInProgress":
            try:
                self._roll_back(refresh.rollback_reason or "Rollback requested")
            except Exception as error:
                log.exception("rollback %s crashed", refresh.instance_refresh_id)
                refresh.finish("RollbackFailed", f"Internal error in the local region: {error}")
            return
        self.run()

    def run(self) -> None:
        refresh = self.refresh
        try:
            refresh.status = "InProgress"
            self._roll(skip_matching=bool(self.preferences.get("SkipMatching")), rolling_back=False)
            refresh.percentage_complete = 100
            refresh.finish("Successful", "")
        except RefreshFailed as failure:
            if self.preferences.get("AutoRollback"):
                self._roll_back(f"Instance refresh failed: {failure}")
            else:
                refresh.finish("Failed", str(failure))
        except RefreshStopped:
            if refresh.rollback_requested.is_set():
                self._roll_back("Rollback requested by RollbackInstanceRefresh")
            elif self.refresh.cancel_requested.is_set():
                refresh.finish("Cancelled", "Cancelled by CancelInstanceRefresh")
            else:
                refresh.finish("Failed", "The Auto Scaling group was deleted")
        except Exception as error:  # a bug must not leave the refresh active forever
            log.exception("refresh %s crashed", refresh.instance_refresh_id)
            refresh.finish("Failed", f"Internal error in the local region: {error}")

    def _roll_back(self, reason: str) -> None:
        refresh = self.refresh
        refresh.status = "RollbackInProgress"
        refresh.rollback_reason = reason
        refresh.rollback_start_time = dt.datetime.now(dt.UTC)
        refresh.status_reason = reason
        refresh.rollback_requested.clear()
        refresh.cancel_requested.clear()
        if self.previous_version is None or self.group.ec2_launch_template is None:
            refresh.finish("RollbackFailed", f"{reason}; no previous launch template version")
            return
        template = self.group.ec2_launch_template
        _use_template(
            self.group, {"LaunchTemplateId": template.id, "Version": str(self.previous_version)}
        )
        try:
            self._roll(skip_matching=True, rolling_back=True)
        except (RefreshFailed, RefreshStopped) as failure:
            refresh.finish("RollbackFailed", f"{reason}; the rollback failed too: {failure}")
            return
        refresh.finish("RollbackSuccessful", reason)

    # --- one pass over the group ----------------------------------------------------------------

    def _roll(self, *, skip_matching: bool, rolling_back: bool) -> None:
        refresh = self.refresh
        outdated = [s.instance.id for s in _outdated(self.group, skip_matching)]
        total = len(outdated)
        refresh.instances_to_update = total
        refresh.percentage_complete = 0 if total else 100
        checkpoints = sorted(int(p) for p in self.preferences.get("CheckpointPercentages") or [])
        while outdated:
            self._check_stop(rolling_back)
            # Instances that serve nothing go first: replacing them costs no capacity. So a
            # batch takes a serving instance only once every non-serving one is in it, and what
            # keeps serving is never below what the group plans to keep (its minimum healthy
            # percentage), even when it counts InService an instance its target groups do not.
            outdated.sort(key=self._serving, reverse=True)
            batch = outdated[: self._batch_size()]
            self._replace(batch, rolling_back)
            outdated = [i for i in outdated[len(batch) :] if self._member(i)]
            done = total - len(outdated)
            refresh.instances_to_update = len(outdated)
            refresh.percentage_complete = math.floor(100 * done / total)
            if not rolling_back and checkpoints and refresh.percentage_complete >= checkpoints[0]:
                while checkpoints and refresh.percentage_complete >= checkpoints[0]:
                    checkpoints.pop(0)
                if outdated:
                    self._checkpoint()

    def _batch_size(self) -> int:
        capacity = int(self.group.desired_capacity or 0)
        min_healthy = int(self.preferences.get("MinHealthyPercentage", DEFAULT_MIN_HEALTHY))
        max_healthy = int(self.preferences.get("MaxHealthyPercentage", DEFAULT_MAX_HEALTHY))
        if max_healthy > 100:
            return max(1, math.floor(capacity * max_healthy / 100) - capacity)
        return max(1, capacity - math.ceil(capacity * min_healthy / 100))

    def _serving(self, instance_id: str) -> int:
        """0 for an instance healthy in every target group of the group, 1 otherwise."""
        found = self._target_health(instance_id)
        if len(found) < len(self.group.target_group_arns):
            return 1  # a target group does not list it: not registered
        return 0 if all(health.status == "healthy" for _, health in found) else 1

    def _replace(self, batch: list[str], rolling_back: bool) -> None:
        """Replace one batch; returns once the new instances are ready (or raises)."""
        launch_first = int(self.preferences.get("MaxHealthyPercentage", 100)) > 100
        before = {s.instance.id for s in self.group.instance_states}
        self.refresh.status_reason = (
            f"{'Rolling back' if rolling_back else 'Replacing'} {', '.join(batch)}"
        )
        why = f"At {activities.stamp()} instance {{instance_id}} was selected for termination."
        with activities.because(REFRESH_CAUSE.format(stamp=activities.stamp())):
            if launch_first:
                group = self.group
                self.refresh.capacity_before_batch = int(group.desired_capacity or 0)
                try:
                    group.set_desired_capacity(int(group.desired_capacity or 0) + len(batch))
                    self.backend.update_attached_target_groups(group.name)
                    self._wait_ready(_new_ids(group, before), rolling_back)
                    group_members.retire(self.backend, group, batch, decrement=True, why=why)
                finally:
                    self.refresh.capacity_before_batch = None
            else:
                group_members.retire(self.backend, self.group, batch, decrement=False, why=why)
                self.backend.update_attached_target_groups(self.group.name)
                self._wait_ready(_new_ids(self.group, before), rolling_back)

    def _wait_ready(self, new_ids: list[str], rolling_back: bool) -> None:
        group = self.group
        warmup = self._warmup()
        deadline = time.monotonic() + int(group.health_check_grace_period or 0) + warmup
        deadline += READY_TIMEOUT_SECONDS
        ready_at: dict[str, float] = {}
        while True:
            self._check_stop(rolling_back)
            now = time.monotonic()
            for instance_id in new_ids:
                problem = self._problem(instance_id)
                if problem is not None:
                    raise RefreshFailed(problem)
                if instance_id not in ready_at and self._ready(instance_id):
                    ready_at[instance_id] = now
            if len(ready_at) == len(new_ids):
                if all(now - at >= warmup for at in ready_at.values()):
                    return
                self.refresh.status_reason = f"Warming up {', '.join(new_ids)} ({warmup:.0f}s)"
            elif now > deadline:
                waiting = [i for i in new_ids if i not in ready_at]
                raise RefreshFailed(f"{', '.join(waiting)} did not become healthy in time")
            time.sleep(POLL_SECONDS)

    def _warmup(self) -> float:
        value = self.preferences.get("InstanceWarmup")
        if value is None:
            value = getattr(self.group, "default_instance_warmup", None)
        if value is None:
            value = self.group.health_check_grace_period
        return float(value or 0)

    def _problem(self, instance_id: str) -> str | None:
        state = self._state(instance_id)
        if state is None:
            instance = self.backend.ec2_backend.get_instance_by_id(instance_id)
            because = getattr(instance, "webfleet_replaced_because", None)
            if because:
                return f"{instance_id} failed {because} and was replaced"
            return f"{instance_id} left the group"
        if state.instance.state in _EC2_FAILED:
            return f"{instance_id} is {state.instance.state}"
        if self.group.health_check_type != "ELB":
            return None
        # As Auto Scaling does: ELB health counts once the grace period is over (a new instance
        # fails its first checks while it boots).
        if not past_grace_period(self.group, state.instance):
            return None
        for arn, health in self._target_health(instance_id):
            if health.status == "unhealthy":
                reason = health.description or health.reason or "failed health checks"
                return f"{instance_id} is unhealthy in {arn.split('/')[-2]}: {reason}"
        return None

    def _ready(self, instance_id: str) -> bool:
        state = self._state(instance_id)
        if state is None or state.instance.state != "running":
            return False
        if state.lifecycle_state != "InService":
            return False
        if self.group.health_check_type != "ELB":
            return True
        return all(health.status == "healthy" for _, health in self._target_health(instance_id))

    def _target_health(self, instance_id: str) -> list[tuple[str, Any]]:
        return group_members.target_health(self.backend.elbv2_backend, self.group, instance_id)

    def _state(self, instance_id: str) -> Any:
        return next((s for s in self.group.instance_states if s.instance.id == instance_id), None)

    def _member(self, instance_id: str) -> bool:
        state = self._state(instance_id)
        return state is not None and group_members.in_service(state)

    def _checkpoint(self) -> None:
        delay = int(self.preferences.get("CheckpointDelay", DEFAULT_CHECKPOINT_DELAY))
        self.refresh.status_reason = (
            f"Waiting for checkpoint: {self.refresh.percentage_complete}% complete, "
            f"continuing in {delay}s"
        )
        until = time.monotonic() + delay
        while time.monotonic() < until:
            self._check_stop(rolling_back=False)
            time.sleep(POLL_SECONDS)

    def _check_stop(self, rolling_back: bool) -> None:
        if self.backend.autoscaling_groups.get(self.group.name) is not self.group:
            raise RefreshStopped("the group was deleted")
        if rolling_back:
            return
        if self.refresh.cancel_requested.is_set() or self.refresh.rollback_requested.is_set():
            raise RefreshStopped("requested")


def _outdated(group: Any, skip_matching: bool) -> list[Any]:
    target = template_version(group)
    return [
        state
        for state in group.instance_states
        if group_members.in_service(state)
        and (not skip_matching or instance_version(state) != target)
    ]


def _common_version(group: Any) -> int | None:
    """The launch template version most of the group's instances run (before a refresh)."""
    versions = Counter(
        v
        for s in group.instance_states
        if group_members.in_service(s) and (v := instance_version(s)) is not None
    )
    if versions:
        return versions.most_common(1)[0][0]
    return template_version(group)


def _use_template(group: Any, template: dict[str, Any]) -> None:
    group._set_launch_configuration(None, template, group.mixed_instances_policy)
    group.provided_launch_template_version = template.get("Version")


def _new_ids(group: Any, before: set[str]) -> list[str]:
    return [s.instance.id for s in group.instance_states if s.instance.id not in before]
