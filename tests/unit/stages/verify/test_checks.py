"""webfleet/checks.py: how check outcomes add up."""

from __future__ import annotations

from webfleet.stages.verify.checks import Check, failures, summarize


def check(name: str, passed: bool = True, *, skipped: bool = False, seconds: float = 1.0) -> Check:
    return Check(name, "i-1", passed, "seen", seconds, skipped=skipped)


def test_summary_counts_passed_failed_and_skipped() -> None:
    checks = [check("a"), check("b", False), check("c", skipped=True), check("d")]
    summary = summarize(checks)
    assert (summary.total, summary.passed, summary.failed, summary.skipped) == (4, 2, 1, 1)
    assert summary.seconds == 4.0
    assert not summary.ok
    assert [c.name for c in failures(checks)] == ["b"]


def test_all_passed_or_skipped_is_ok_but_nothing_checked_is_not() -> None:
    assert summarize([check("a"), check("b", skipped=True)]).ok
    assert not summarize([]).ok


def test_outcome_and_description_name_check_target_and_what_was_seen() -> None:
    failed = Check("healthz", "i-0abc (10.42.1.4)", False, "GET /healthz → 500", 0.2)
    assert failed.outcome == "failed"
    assert failed.describe() == "healthz on i-0abc (10.42.1.4): GET /healthz → 500"
    assert check("x", skipped=True).outcome == "skipped"
    assert failed.as_dict()["outcome"] == "failed"
