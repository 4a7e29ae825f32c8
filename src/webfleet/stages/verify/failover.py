"""Failover: stop the app on one instance under a steady request stream through the ALB.

What it proves, in the order it happens: the ALB keeps serving (failed requests are counted;
the check fails only on an outage, a stretch with no successful answer), the target group marks
the instance unhealthy, the Auto Scaling Group (health check type ELB) replaces it, and the
replacement becomes a healthy target. Every step has its own bounded wait and timing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from webfleet.stages.verify.checks import Check
from webfleet.traffic import Answer, RequestStream, longest_outage
from webfleet.waits import wait_for

GROUP = "failover"
# An outage is this long a stretch without a successful answer (a few failed requests spread
# among good ones are counted, not fatal: an ALB does not retry a refused connection).
MAX_OUTAGE_SECONDS = 2.0
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class FailoverReport:
    victim: str
    replacement: str | None
    requests: int
    failed_requests: int
    failures: dict[str, int]  # what failed requests saw → how many
    longest_outage_seconds: float
    stop_detail: str
    seconds_to_unhealthy: float | None
    seconds_to_replaced: float | None
    seconds_to_replacement_healthy: float | None
    unhealthy_seen: str
    replacement_seen: str
    healthy_seen: str

    def checks(self) -> list[Check]:
        checks = [
            Check(
                "stop the app service",
                self.victim,
                not self.stop_detail.startswith("failed"),
                self.stop_detail,
                0.0,
                group=GROUP,
            ),
            _timed(
                "target marked unhealthy (time since stop)",
                self.victim,
                self.seconds_to_unhealthy,
                self.unhealthy_seen,
            ),
            _timed(
                "instance replaced by the group",
                self.victim,
                self.seconds_to_replaced,
                self.replacement_seen,
            ),
            _timed(
                "replacement healthy",
                self.replacement or "(no replacement)",
                self.seconds_to_replacement_healthy,
                self.healthy_seen,
            ),
        ]
        failures = ", ".join(f"{what} x{n}" for what, n in sorted(self.failures.items()))
        detail = (
            f"{self.failed_requests} of {self.requests} requests failed"
            + (f" ({failures})" if failures else "")
            + f"; longest outage {self.longest_outage_seconds:.1f} s"
            + f" (allowed {MAX_OUTAGE_SECONDS:.1f} s)"
        )
        checks.append(
            Check(
                "requests through the ALB during failover",
                "ALB",
                self.requests > 0 and self.longest_outage_seconds <= MAX_OUTAGE_SECONDS,
                detail,
                0.0,
                group=GROUP,
            )
        )
        return checks


def _timed(name: str, target: str, seconds: float | None, seen: str) -> Check:
    if seconds is None:
        return Check(name, target, False, seen, 0.0, group=GROUP)
    return Check(name, target, True, f"after {seconds:.1f} s: {seen}", seconds, group=GROUP)


@dataclass(frozen=True)
class FleetProbe:
    """What failover needs to see of the fleet and do to it; verify wires these to AWS APIs."""

    in_service: Callable[[], list[str]]  # InService instance ids of the group
    target_states: Callable[[], dict[str, str]]  # instance id → target health state
    stop_service: Callable[[str], str]  # stops the app on an instance; returns what happened
    fetch: Callable[[], Answer]  # one request through the ALB


@dataclass(frozen=True)
class FailoverTimeouts:
    unhealthy: float
    replaced: float
    healthy: float


def run_failover(
    victim: str,
    probe: FleetProbe,
    timeouts: FailoverTimeouts,
    *,
    on_step: Callable[[str], None] = lambda _line: None,
    poll: float = POLL_SECONDS,
) -> FailoverReport:
    """Stop the app on victim under a request stream; wait for unhealthy, replacement, healthy."""
    before = set(probe.in_service())
    stream = RequestStream(probe.fetch).start()
    to_unhealthy = to_replaced = to_healthy = None
    replacement: str | None = None
    unhealthy_seen = replacement_seen = healthy_seen = "not reached: an earlier step failed"
    try:
        # A baseline of good answers first, so an outage right at the stop is measured.
        wait_for(lambda: len(stream.samples), lambda n: n >= 5, timeout=10, interval=0.2)
        on_step(f"stopping the app on {victim}")
        stop_detail = probe.stop_service(victim)
        stopped_at = time.monotonic()

        def since_stop() -> float:
            return round(time.monotonic() - stopped_at, 3)

        if not stop_detail.startswith("failed"):
            on_step(f"waiting for the target group to mark {victim} unhealthy")
            unhealthy = wait_for(
                probe.target_states,
                lambda states: states.get(victim, "unregistered") not in ("healthy", "initial"),
                timeout=timeouts.unhealthy,
                interval=poll,
            )
            unhealthy_seen = f"{victim} {unhealthy.last.get(victim, 'unregistered')}"
            if unhealthy.ok:
                to_unhealthy = since_stop()
            else:
                unhealthy_seen += f" after {unhealthy.seconds:.0f} s (timeout)"

        if to_unhealthy is not None:
            on_step(f"waiting for the group to replace {victim}")
            replaced = wait_for(
                probe.in_service,
                lambda ids: victim not in ids and bool(set(ids) - before),
                timeout=timeouts.replaced,
                interval=poll,
            )
            new_ids = sorted(set(replaced.last) - before)
            replacement = new_ids[0] if new_ids else None
            replacement_seen = f"InService: {', '.join(sorted(replaced.last)) or 'none'}"
            if replaced.ok:
                to_replaced = since_stop()
            else:
                replacement_seen += f" after {replaced.seconds:.0f} s (timeout)"

        if to_replaced is not None and replacement is not None:
            on_step(f"waiting for {replacement} to become a healthy target")
            healthy = wait_for(
                probe.target_states,
                lambda states: states.get(replacement, "") == "healthy",
                timeout=timeouts.healthy,
                interval=poll,
            )
            healthy_seen = f"{replacement} {healthy.last.get(replacement, 'unregistered')}"
            if healthy.ok:
                to_healthy = since_stop()
            else:
                healthy_seen += f" after {healthy.seconds:.0f} s (timeout)"
    finally:
        samples = stream.stop()
    failed = [s for s in samples if not s.answer.ok]
    return FailoverReport(
        victim=victim,
        replacement=replacement,
        requests=len(samples),
        failed_requests=len(failed),
        failures=dict(Counter(s.answer.describe() for s in failed)),
        longest_outage_seconds=longest_outage(samples),
        stop_detail=stop_detail,
        seconds_to_unhealthy=to_unhealthy,
        seconds_to_replaced=to_replaced,
        seconds_to_replacement_healthy=to_healthy,
        unhealthy_seen=unhealthy_seen,
        replacement_seen=replacement_seen,
        healthy_seen=healthy_seen,
    )
