"""Bounded waits: poll a condition until it holds or a deadline passes, and say what was seen.

Every wait in verify goes through here, so none hides a race behind a fixed sleep: each has a
timeout, a poll interval, and returns the last observation for the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Waited(Generic[T]):
    ok: bool
    seconds: float
    last: T  # the last observation (what was seen when it held, or at the deadline)


def wait_for(
    observe: Callable[[], T],
    holds: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited[T]:
    """Observe until holds(observation) or timeout seconds have passed (at least one look)."""
    started = clock()
    while True:
        seen = observe()
        elapsed = clock() - started
        if holds(seen):
            return Waited(True, round(elapsed, 3), seen)
        if elapsed >= timeout:
            return Waited(False, round(elapsed, 3), seen)
        sleep(min(interval, max(0.0, timeout - elapsed)))
