"""What verify reports: one `Check` per thing it looked at, and how they add up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One check's outcome: what (name), where (target: an instance, listener, the group),
    whether it passed, what was seen (detail), and how long it took."""

    name: str
    target: str
    passed: bool
    detail: str
    seconds: float
    # Passed without looking (nothing to check, e.g. no secrets in the stack).
    skipped: bool = False
    # The group the check belongs to: "specs", "http", "failover", "fleet".
    group: str = "verify"

    @property
    def outcome(self) -> str:
        if self.skipped:
            return "skipped"
        return "passed" if self.passed else "failed"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome}

    def describe(self) -> str:
        """One line a person understands: which check, where, what it saw."""
        return f"{self.name} on {self.target}: {self.detail}"


@dataclass(frozen=True)
class Summary:
    total: int
    passed: int
    failed: int
    skipped: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.failed == 0


def summarize(checks: Iterable[Check]) -> Summary:
    """Counts over the checks; no check at all is not a pass."""
    items = list(checks)
    failed = sum(1 for c in items if not c.passed)
    skipped = sum(1 for c in items if c.skipped and c.passed)
    return Summary(
        total=len(items),
        passed=len(items) - failed - skipped,
        failed=failed,
        skipped=skipped,
        seconds=round(sum(c.seconds for c in items), 3),
    )


def failures(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if not c.passed]
