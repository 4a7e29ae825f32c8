"""webfleet/waits.py: bounded polling that reports what it saw."""

from __future__ import annotations

from webfleet.waits import wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_returns_as_soon_as_the_condition_holds() -> None:
    clock = FakeClock()
    values = iter([1, 2, 3, 4])
    waited = wait_for(
        lambda: next(values), lambda v: v >= 3, timeout=60, interval=2, clock=clock,
        sleep=clock.sleep,
    )  # fmt: skip
    assert waited.ok and waited.last == 3 and waited.seconds == 4.0


def test_gives_up_at_the_deadline_with_the_last_observation() -> None:
    clock = FakeClock()
    waited = wait_for(
        lambda: "initial", lambda v: v == "healthy", timeout=5, interval=2, clock=clock,
        sleep=clock.sleep,
    )  # fmt: skip
    assert not waited.ok and waited.last == "initial"
    assert waited.seconds == 5.0  # the last sleep is cut to the deadline
