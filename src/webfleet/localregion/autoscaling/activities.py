"""The local region's Auto Scaling activity history: every launch and termination of a group's
instances, with the descriptions, causes and statuses EC2 Auto Scaling writes.

Whoever changes a group says why (`record_launches`, `record_termination`); launches made while
the group catches up with its desired capacity name the reason the capacity changed when the
caller set one with `because(...)` (a scaling policy, a user request). DescribeScalingActivities
answers from this history, newest first, with MaxRecords and NextToken as on AWS (moto answers
an empty list).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from webfleet.localregion.api.patches import moto_patch
from webfleet.localregion.autoscaling.errors import client_error

SUCCESSFUL = "Successful"
IN_PROGRESS = "InProgress"
# A terminating instance waits out its target groups' deregistration delay in this state.
DRAINING = "WaitingForELBConnectionDraining"
MAX_RECORDS = 100

_context = threading.local()


def stamp(when: dt.datetime | None = None) -> str:
    """AWS's time in a cause: 2026-12-02T10:00:00Z."""
    return (when or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def history(backend: Any) -> list[Any]:
    """The region's activities, newest first (kept on the backend, as its refreshes are)."""
    store: list[Any] | None = getattr(backend, "webfleet_scaling_activities", None)
    if store is None:
        store = []
        backend.webfleet_scaling_activities = store
    return store


# A cause, or how to say it once the group's new capacity is known.
Cause = str | Callable[[Any], str]


@contextlib.contextmanager
def because(cause: Cause) -> Iterator[None]:
    """Launches and terminations in the block happen for `cause` (a sentence, AWS's wording)."""
    previous = getattr(_context, "cause", None)
    _context.cause = cause
    try:
        yield
    finally:
        _context.cause = previous


def current_cause(group: Any) -> str | None:
    """The cause set by an enclosing `because`, if any."""
    cause: Cause | None = getattr(_context, "cause", None)
    if cause is None:
        return None
    return cause if isinstance(cause, str) else cause(group)


def record(
    backend: Any,
    group: Any,
    description: str,
    cause: str,
    *,
    status: str = SUCCESSFUL,
    details: dict[str, str] | None = None,
) -> Any:
    """Add one activity to the history and return it (to finish it later)."""
    from moto.autoscaling.models import Activity

    activity = Activity(description, cause, group, status_code=status)
    activity.progress = 100 if status == SUCCESSFUL else 50
    if status != SUCCESSFUL:
        activity.end_time = None  # type: ignore[assignment]  # AWS: no EndTime until it ends
    activity.details = _details(details)  # type: ignore[attr-defined]
    activity.auto_scaling_group_arn = getattr(group, "arn", None)  # type: ignore[attr-defined]
    history(backend).insert(0, activity)
    return activity


def finish(activity: Any, status: str = SUCCESSFUL) -> None:
    activity.status_code = status
    activity.progress = 100
    activity.end_time = dt.datetime.now(dt.UTC).replace(tzinfo=None)


def record_launches(backend: Any, group: Any, instances: Iterable[Any], before: int) -> None:
    """One "Launching a new EC2 instance" per new instance; `before` is the count it started at."""
    count = before
    for instance in instances:
        count += 1
        cause = (
            f"At {stamp()} an instance was started in response to a difference between desired "
            f"and actual capacity, increasing the capacity from {count - 1} to {count}."
        )
        if reason := current_cause(group):
            cause = f"{reason} {cause}"
        record(
            backend,
            group,
            f"Launching a new EC2 instance: {instance.id}",
            cause,
            details=_placement(instance),
        )


def record_termination(backend: Any, group: Any, instance: Any, why: str, *, draining: bool) -> Any:
    """ "Terminating EC2 instance", in progress while it drains; returns it to finish later."""
    cause = f"At {stamp()} {why}"
    if reason := current_cause(group):
        cause = f"{reason} {cause}"
    return record(
        backend,
        group,
        f"Terminating EC2 instance: {instance.id}",
        cause,
        status=DRAINING if draining else IN_PROGRESS,
        details=_placement(instance),
    )


def _placement(instance: Any) -> dict[str, str]:
    details = {"Subnet ID": str(getattr(instance, "subnet_id", "") or "")}
    zone = getattr(getattr(instance, "_placement", None), "zone", None)
    if zone:
        details["Availability Zone"] = str(zone)
    return details


def _details(details: dict[str, str] | None) -> str:
    import json

    return json.dumps(details or {})


def page(
    activities: list[Any], max_records: int | None, next_token: str | None
) -> tuple[list[Any], str | None]:
    """One page of activities and the token of the next (None on the last)."""
    start = 0
    if next_token:
        try:
            start = int(next_token)
        except ValueError:
            raise ValueError(f"invalid NextToken {next_token!r}") from None
    size = max(1, min(MAX_RECORDS, max_records or MAX_RECORDS))
    end = start + size
    return activities[start:end], (str(end) if end < len(activities) else None)


def paged_result(response: Any, key: str, items: list[Any]) -> dict[str, Any]:
    """One page of `items` under `key`, after the request's MaxRecords and NextToken (AWS's
    InvalidNextToken for a token it did not give)."""
    limit = response._get_param("MaxRecords")
    try:
        shown, token = page(items, int(limit) if limit else None, response._get_param("NextToken"))
    except ValueError as error:
        raise client_error("InvalidNextToken", str(error)) from None
    result: dict[str, Any] = {key: shown}
    if token:
        result["NextToken"] = token
    return result


@moto_patch("autoscaling.scaling_activities")
def serve_scaling_activities() -> None:
    """DescribeScalingActivities from the history (moto answers an empty list)."""
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    def describe_scaling_activities(self: AutoScalingResponse) -> ActionResult:
        name = self._get_param("AutoScalingGroupName")
        ids = self._get_param("ActivityIds") or []
        limit = self._get_param("MaxRecords")
        if limit is not None and not 1 <= int(limit) <= MAX_RECORDS:
            raise client_error(
                "ValidationError",
                f"1 validation error detected: Value '{limit}' at 'maxRecords' failed to "
                f"satisfy constraint: Member must have value less than or equal to {MAX_RECORDS}",
            )
        wanted = [
            a
            for a in history(self.autoscaling_backend)
            if (not name or a.auto_scaling_group_name == name) and (not ids or a.activity_id in ids)
        ]
        return ActionResult(paged_result(self, "Activities", wanted))

    AutoScalingResponse.describe_scaling_activities = describe_scaling_activities  # type: ignore[method-assign]


@moto_patch("autoscaling.user_request_causes")
def name_user_requests() -> None:
    """Launches and terminations that follow a user's CreateAutoScalingGroup,
    UpdateAutoScalingGroup or SetDesiredCapacity say so, as on AWS."""
    from moto.autoscaling.responses import AutoScalingResponse

    def wrap(method: str, request: Callable[[Any], str]) -> None:
        original = getattr(AutoScalingResponse, method)

        def handler(self: AutoScalingResponse) -> Any:
            name = self._get_param("AutoScalingGroupName")
            existing = self.autoscaling_backend.autoscaling_groups.get(name)
            old = int(existing.desired_capacity or 0) if existing is not None else 0

            def cause(group: Any) -> str:
                return (
                    f"At {stamp()} {request(group)} changing the desired capacity from {old} "
                    f"to {group.desired_capacity}."
                )

            with because(cause):
                return original(self)

        setattr(AutoScalingResponse, method, handler)

    wrap("create_auto_scaling_group", lambda group: "a user request created an AutoScalingGroup")
    wrap(
        "update_auto_scaling_group",
        lambda group: (
            "a user request update of AutoScalingGroup constraints to min: "
            f"{group.min_size}, max: {group.max_size}, desired: {group.desired_capacity}"
        ),
    )
    wrap(
        "set_desired_capacity",
        lambda group: "a user request explicitly set group desired capacity",
    )
