"""The rolling deploy: follow the instance refresh that an apply started, until it ends.

A new launch template version (a new AMI, new user data) changes the Auto Scaling Group, and the
group's `instance_refresh` block makes the provider start a rolling refresh; Terraform does not
wait for it. `deploy` and `pipeline` do: they report its progress and fail when it does not
succeed (failed, cancelled, or rolled back), saying why. `pipeline` also sends a steady request
stream through the ALB meanwhile and reports failed requests and the app versions answering.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webfleet import refresh_status, traffic
from webfleet.config import EnvironmentStack
from webfleet.errors import WebfleetError
from webfleet.fleet import Deployment, FleetView
from webfleet.reporting import Reporter
from webfleet.stages.deploy.apply import DeployResult
from webfleet.targets import cloud_target
from webfleet.traffic import RequestStream, Sample

POLL_SECONDS = 2.0
# Per batch, beyond the stack's own grace period and warmup: boot, drain, health checks.
BATCH_MARGIN_SECONDS = 300


class RolloutFailed(WebfleetError):
    """The instance refresh ended other than Successful, or requests failed during it."""


@dataclass(frozen=True)
class RolloutResult:
    refresh_id: str
    status: str
    reason: str
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.status == "Successful"

    def as_dict(self) -> dict[str, Any]:
        return {
            "refresh_id": self.refresh_id,
            "status": self.status,
            "reason": self.reason,
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class TrafficReport:
    """What a request stream through the ALB saw during the rollout."""

    requests: int
    failed: int
    # App versions in the order they last answered: the fleet moved from the first to the last
    # (the order of first answers misleads when a new instance answers before an old one).
    versions: tuple[str, ...]
    final_version: str | None  # the version of the last successful answer
    both_served_seconds: float  # from the newest version's first answer to an older one's last
    first_failure: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "versions": list(self.versions),
            "final_version": self.final_version,
            "both_served_seconds": self.both_served_seconds,
            "first_failure": self.first_failure,
        }

    def describe(self) -> str:
        switch = " → ".join(self.versions) or "no version seen"
        overlap = (
            f" (both answered for {self.both_served_seconds:.0f} s)"
            if len(self.versions) > 1
            else ""
        )
        return f"{self.requests} requests, {self.failed} failed; versions {switch}{overlap}"


def traffic_report(samples: Sequence[Sample]) -> TrafficReport:
    first_seen: dict[str, float] = {}
    last_seen: dict[str, float] = {}
    first_failure = None
    failed = 0
    final = None
    for sample in samples:
        answer = sample.answer
        if not answer.ok:
            failed += 1
            if first_failure is None:
                first_failure = f"at {sample.at:.1f} s: {answer.describe()}"
            continue
        if answer.version:
            first_seen.setdefault(answer.version, sample.at)
            last_seen[answer.version] = sample.at
            final = answer.version
    versions = sorted(last_seen, key=lambda version: last_seen[version])
    overlap = 0.0
    if len(versions) > 1:
        newest = versions[-1]
        older_last = max(last_seen[v] for v in versions[:-1])
        overlap = round(max(0.0, older_last - first_seen[newest]), 1)
    return TrafficReport(len(samples), failed, tuple(versions), final, overlap, first_failure)


def rollout_timeout(stack: EnvironmentStack) -> float:
    """A bound on a whole refresh (and a rollback) of the largest fleet the stack allows."""
    fleet = stack.asg
    per_batch = (
        fleet.health_check_grace_period
        + fleet.instance_refresh.instance_warmup
        + stack.load_balancer.deregistration_delay
        + BATCH_MARGIN_SECONDS
    )
    return float(2 * fleet.max_size * per_batch)


def follow_refresh(
    fleet: FleetView,
    refresh_id: str,
    on_change: Callable[[str], None],
    timeout: float,
) -> RolloutResult:
    """Poll the refresh until it ends (or the timeout); report each change of its progress."""
    started = time.monotonic()
    seen: tuple[str, int, str] | None = None
    while True:
        refresh = fleet.refresh(refresh_id)
        status = str(refresh["Status"])
        reason = str(refresh.get("StatusReason") or "")
        percentage = int(refresh.get("PercentageComplete") or 0)
        if (status, percentage, reason) != seen:
            seen = (status, percentage, reason)
            suffix = f": {reason}" if reason else ""
            on_change(f"instance refresh {status} {percentage}%{suffix}")
        elapsed = time.monotonic() - started
        if status in refresh_status.ENDED:
            return RolloutResult(refresh_id, status, reason, elapsed)
        if elapsed > timeout:
            raise RolloutFailed(
                f"instance refresh {refresh_id} of {fleet.deployment.asg_name} still {status} "
                f"after {timeout:.0f} s: {reason or 'no reason given'}"
            )
        time.sleep(POLL_SECONDS)


def check_rollout(result: RolloutResult, traffic: TrafficReport | None) -> None:
    """Fail with what went wrong: the refresh's end, or requests that failed during it."""
    if not result.succeeded:
        hint = {
            "RollbackSuccessful": "the fleet is back on the previous launch template version and "
            "still serving; fix the app (see the reason) and bake again",
            "RollbackFailed": "the fleet may run both versions; see the reason",
            "Cancelled": "another change or a CancelInstanceRefresh stopped it; re-run deploy",
        }.get(result.status, "see the reason")
        raise RolloutFailed(
            f"instance refresh {result.status}: {result.reason or 'no reason given'} — {hint}"
        )
    if traffic is not None and traffic.failed:
        raise RolloutFailed(
            f"{traffic.failed} of {traffic.requests} requests through the ALB failed during the "
            f"rolling deploy (first {traffic.first_failure})"
        )


def watched_rollout(
    fleet: FleetView,
    refresh_id: str,
    on_change: Callable[[str], None],
    timeout: float,
    stream: RequestStream | None,
) -> tuple[RolloutResult, TrafficReport | None]:
    """Follow the refresh with the request stream (if any) running meanwhile."""
    if stream is not None:
        stream.start()
    try:
        result = follow_refresh(fleet, refresh_id, on_change, timeout)
    finally:
        samples = stream.stop() if stream is not None else None
    return result, (traffic_report(samples) if samples is not None else None)


def follow_deployed(
    stack: EnvironmentStack,
    deployed: DeployResult,
    reporter: Reporter,
    *,
    with_traffic: bool,
) -> tuple[RolloutResult | None, TrafficReport | None]:
    """Follow the instance refresh a deploy started (if any), with_traffic under a request
    stream through the ALB; fail unless it succeeded."""
    if deployed.refresh_id is None:
        return None, None
    reporter.stage(
        "rollout",
        "instance refresh" + (" under a request stream through the ALB" if with_traffic else ""),
    )
    deployment = Deployment.from_outputs(deployed.outputs, source=Path("deploy outputs"))
    fleet = FleetView(cloud_target(stack), deployment)
    stream = None
    if with_traffic:
        alb = traffic.alb_target(stack, deployment)
        listener = alb.serving
        stream = RequestStream(fetch=lambda: traffic.fetch(alb.dns_name, listener, "/"))
    rolled, traffic_seen = watched_rollout(
        fleet, deployed.refresh_id, reporter.note, rollout_timeout(stack), stream
    )
    if traffic_seen is not None:
        reporter.note(f"through the ALB: {traffic_seen.describe()}", "bold")
    check_rollout(rolled, traffic_seen)
    return rolled, traffic_seen
