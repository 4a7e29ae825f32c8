"""verify's failover: the failover sequence against a fake fleet, and outage arithmetic."""

from __future__ import annotations

import threading

from webfleet.stages.verify.failover import (
    FailoverTimeouts,
    FleetProbe,
    run_failover,
)
from webfleet.traffic import Answer, Sample, longest_outage

OK = Answer(200, "i-2")
FAIL = Answer(502)


def samples(*pairs: tuple[float, Answer]) -> list[Sample]:
    return [Sample(at, answer) for at, answer in pairs]


def test_longest_outage_is_the_longest_stretch_without_a_success() -> None:
    assert longest_outage(samples((0, OK), (1, FAIL), (1.5, OK), (2, FAIL), (2.2, OK))) == 0.5
    assert longest_outage(samples((0, OK), (1, FAIL), (2, FAIL), (4, OK))) == 3.0
    # Still failing at the end: counted to the last sample.
    assert longest_outage(samples((0, OK), (1, FAIL), (3, FAIL))) == 2.0
    assert longest_outage([]) == 0.0


class FakeFleet:
    """i-1 and i-2 serve; stopping i-1 makes it unhealthy, then i-3 replaces it."""

    def __init__(self, *, replace: bool = True) -> None:
        self.lock = threading.Lock()
        self.stopped = False
        self.polls = 0
        self.replace = replace

    def in_service(self) -> list[str]:
        with self.lock:
            self.polls += 1
            if self.stopped and self.replace and self.polls > 3:
                return ["i-2", "i-3"]
            return ["i-1", "i-2"]

    def target_states(self) -> dict[str, str]:
        if not self.stopped:
            return {"i-1": "healthy", "i-2": "healthy"}
        if self.replace and self.polls > 3:
            return {"i-2": "healthy", "i-3": "healthy"}
        return {"i-1": "unhealthy", "i-2": "healthy"}

    def stop(self, instance_id: str) -> str:
        self.stopped = True
        return f"stopped {instance_id}"

    def fetch(self) -> Answer:
        return OK


def probe(fleet: FakeFleet) -> FleetProbe:
    return FleetProbe(fleet.in_service, fleet.target_states, fleet.stop, fleet.fetch)


def test_failover_reports_each_step_with_timings() -> None:
    fleet = FakeFleet()
    steps: list[str] = []
    report = run_failover(
        "i-1", probe(fleet), FailoverTimeouts(5, 5, 5), on_step=steps.append, poll=0.01
    )
    assert report.replacement == "i-3"
    assert report.seconds_to_unhealthy is not None
    assert report.seconds_to_replaced is not None
    assert report.seconds_to_replacement_healthy is not None
    assert report.requests >= 5 and report.failed_requests == 0
    checks = report.checks()
    assert all(c.passed for c in checks), [c.describe() for c in checks]
    assert [c.name for c in checks][-1] == "requests through the ALB during failover"
    assert steps[0] == "stopping the app on i-1"


def test_a_group_that_never_replaces_fails_naming_what_it_saw() -> None:
    fleet = FakeFleet(replace=False)
    report = run_failover("i-1", probe(fleet), FailoverTimeouts(5, 0.05, 5), poll=0.01)
    checks = {c.name: c for c in report.checks()}
    assert checks["target marked unhealthy (time since stop)"].passed
    replaced = checks["instance replaced by the group"]
    assert not replaced.passed and replaced.detail.startswith("InService: i-1, i-2 after")
    assert not checks["replacement healthy"].passed
    assert report.replacement is None


def test_a_failed_stop_skips_the_waits() -> None:
    fleet = FakeFleet()
    fake = FleetProbe(
        fleet.in_service, fleet.target_states, lambda _i: "failed: ssh exit 255", fleet.fetch
    )
    report = run_failover("i-1", fake, FailoverTimeouts(60, 60, 60), poll=0.01)
    checks = {c.name: c for c in report.checks()}
    assert not checks["stop the app service"].passed
    assert "not reached" in checks["target marked unhealthy (time since stop)"].detail
