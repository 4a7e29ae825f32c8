"""`invoke load`: a bounded request load on the local region's ALB, with the fleet watched live.

Sends --rps requests per second for --duration seconds to the deployed ALB (its address must be
on loopback: this is a rehearsal tool, not a load test of anything on the internet), and/or
with --cpu N burns N CPUs on every InService instance for the duration (over SSH, as the
tutorials' `stress --cpu N` does), and every
couple of seconds reports the group's desired and InService capacity and the metrics its target
tracking policies act on (from the region's CloudWatch). --settle keeps watching after the load
until the group is back at its minimum size (bounded).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from webfleet.errors import WebfleetError
from webfleet.fleet import FleetView
from webfleet.traffic import Answer

MAX_RPS = 500
MAX_DURATION_SECONDS = 1800
MAX_SETTLE_SECONDS = 1800
REPORT_SECONDS = 2.0
WORKERS = 32


MAX_CPU_BURNERS = 16


@dataclass(frozen=True)
class LoadPlan:
    rps: int
    duration: float
    settle: float
    path: str = "/"
    cpu: int = 0  # busy loops per instance for the duration (`stress --cpu N`), 0: none

    def check(self) -> None:
        problems = []
        lowest = 0 if self.cpu else 1
        if not lowest <= self.rps <= MAX_RPS:
            problems.append(
                f"--rps must be between {lowest} and {MAX_RPS} (got {self.rps}; 0 only with --cpu)"
            )
        if not 0 <= self.cpu <= MAX_CPU_BURNERS:
            problems.append(f"--cpu must be between 0 and {MAX_CPU_BURNERS} (got {self.cpu})")
        if not 0 < self.duration <= MAX_DURATION_SECONDS:
            problems.append(
                f"--duration must be between 1 and {MAX_DURATION_SECONDS} s (got {self.duration:g})"
            )
        if not 0 <= self.settle <= MAX_SETTLE_SECONDS:
            problems.append(f"--settle must be between 0 and {MAX_SETTLE_SECONDS} s")
        if not self.path.startswith("/"):
            problems.append(f"--path must start with / (got {self.path!r})")
        if problems:
            raise WebfleetError("; ".join(problems))


@dataclass(frozen=True)
class FleetSample:
    at: float
    desired: int
    in_service: int
    healthy: int
    cpu: float | None
    requests_per_target: float | None

    def describe(self) -> str:
        cpu = "n/a" if self.cpu is None else f"{self.cpu:.0f}%"
        rpt = "n/a" if self.requests_per_target is None else f"{self.requests_per_target:.0f}/min"
        return (
            f"desired {self.desired}, InService {self.in_service}, healthy {self.healthy}; "
            f"CPU {cpu}, requests per target {rpt}"
        )


@dataclass
class LoadReport:
    plan: LoadPlan
    sent: int = 0
    failed: int = 0
    first_failure: str | None = None
    samples: list[FleetSample] = field(default_factory=list)
    activities: list[str] = field(default_factory=list)
    settled_seconds: float | None = None  # after the load, until desired was back at min

    @property
    def peak_desired(self) -> int:
        return max((s.desired for s in self.samples), default=0)

    @property
    def final_desired(self) -> int:
        return self.samples[-1].desired if self.samples else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rps": self.plan.rps,
            "cpu": self.plan.cpu,
            "duration": self.plan.duration,
            "path": self.plan.path,
            "sent": self.sent,
            "failed": self.failed,
            "first_failure": self.first_failure,
            "peak_desired": self.peak_desired,
            "final_desired": self.final_desired,
            "settled_seconds": self.settled_seconds,
            "activities": self.activities,
            "samples": [vars(s) for s in self.samples],
        }


def sample_fleet(fleet: FleetView, at: float) -> FleetSample:
    """The group's capacity, its healthy targets and the metrics its policies act on, now."""
    group = fleet.group()
    healthy = sum(1 for state in fleet.target_states().values() if state == "healthy")
    return FleetSample(
        round(at, 1),
        int(group["DesiredCapacity"]),
        len(fleet.in_service_ids(group)),
        healthy,
        fleet.group_cpu(),
        fleet.requests_per_target(),
    )


def check_loopback(dns_name: str) -> None:
    """Refuse an ALB whose name does not resolve to loopback (the local region's)."""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(dns_name, None)}
    except OSError as error:
        raise WebfleetError(f"{dns_name} does not resolve ({error}): is the region up?") from None
    outside = [a for a in addresses if not ipaddress.ip_address(a).is_loopback]
    if outside:
        raise WebfleetError(
            f"{dns_name} resolves to {', '.join(sorted(outside))}, not loopback: `invoke load` "
            "only drives the local region's load balancers"
        )


def cpu_burn_command(burners: int, seconds: float) -> str:
    """What `stress --cpu N --timeout S` does, with the shell every image has: N busy loops,
    ended by `timeout` even if nobody comes back to stop them; detached, so ssh returns."""
    loops = " ".join(["(while :; do :; done) &"] * burners)
    return f"setsid nohup timeout {int(seconds)} sh -c '{loops} wait' >/dev/null 2>&1 < /dev/null &"


def run_load(
    plan: LoadPlan,
    fetch: Callable[[], Answer],
    fleet: FleetView,
    on_sample: Callable[[str], None],
) -> LoadReport:
    """Send the load while sampling the fleet; then (with settle) wait for the minimum size.
    (A CPU burn, started on the instances before, runs meanwhile by itself.)"""
    report = LoadReport(plan)
    started_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    started = time.monotonic()
    lock = threading.Lock()

    def send() -> None:
        answer = fetch()
        with lock:
            report.sent += 1
            if not answer.ok:
                report.failed += 1
                if report.first_failure is None:
                    report.first_failure = answer.describe()

    def observe(phase: str) -> FleetSample:
        sample = sample_fleet(fleet, time.monotonic() - started)
        report.samples.append(sample)
        with lock:
            counts = f"sent {report.sent}, failed {report.failed}"
        on_sample(f"{sample.at:6.1f} s {phase}: {counts}; {sample.describe()}")
        return sample

    interval = 1.0 / plan.rps if plan.rps else REPORT_SECONDS
    next_report = started
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="webfleet-load") as pool:
        sent = 0
        while (now := time.monotonic()) - started < plan.duration:
            due = int((now - started) / interval) + 1 if plan.rps else 0
            while sent < due:
                pool.submit(send)
                sent += 1
            if now >= next_report:
                observe("load")
                next_report = now + REPORT_SECONDS
            time.sleep(min(interval, 0.05))
    load_end = time.monotonic()
    observe("load done")
    if plan.settle > 0:
        minimum = int(fleet.group()["MinSize"])
        while time.monotonic() - load_end < plan.settle:
            sample = observe("after")
            if sample.desired <= minimum and sample.in_service <= minimum:
                report.settled_seconds = round(time.monotonic() - load_end, 1)
                break
            time.sleep(REPORT_SECONDS)
    report.activities = fleet.activities_since(started_at)
    return report
