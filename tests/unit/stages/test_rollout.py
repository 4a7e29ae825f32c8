"""What the rolling deploy reports of the request stream, and when it fails (pure logic)."""

from __future__ import annotations

import pytest

from webfleet.stages.rollout import RolloutFailed, RolloutResult, check_rollout, traffic_report
from webfleet.traffic import Answer, Sample


def sample(at: float, version: str | None, status: int | None = 200) -> Sample:
    return Sample(at, Answer(status=status, version=version, error=None if status else "reset"))


def test_versions_in_order_of_last_answer_and_the_time_both_answered() -> None:
    samples = [
        sample(0.0, "1.0.0"),
        sample(1.0, "1.1.0"),
        sample(2.0, "1.0.0"),
        sample(3.5, "1.0.0"),
        sample(4.0, "1.1.0"),
        sample(5.0, "1.1.0"),
    ]
    report = traffic_report(samples)
    assert report.versions == ("1.0.0", "1.1.0")
    assert report.final_version == "1.1.0"
    assert report.both_served_seconds == 2.5
    assert (report.requests, report.failed) == (6, 0)
    assert report.describe() == (
        "6 requests, 0 failed; versions 1.0.0 → 1.1.0 (both answered for 2 s)"
    )


def test_a_new_version_answering_first_still_reads_old_to_new() -> None:
    # A new instance answered before the stream reached an old one: the fleet still moved from
    # 1.0.0 to 1.0.1.
    samples = [sample(0.0, "1.0.1"), sample(1.0, "1.0.0"), sample(2.0, "1.0.1")]
    report = traffic_report(samples)
    assert report.versions == ("1.0.0", "1.0.1")
    assert report.describe().endswith("versions 1.0.0 → 1.0.1 (both answered for 1 s)")


def test_failed_requests_fail_a_successful_refresh_naming_the_first() -> None:
    report = traffic_report([sample(0.0, "1.0.0"), sample(0.5, None, status=None)])
    assert report.failed == 1
    with pytest.raises(RolloutFailed, match=r"1 of 2 requests .* failed .*at 0.5 s"):
        check_rollout(RolloutResult("r-1", "Successful", "", 10.0), report)


def test_a_rolled_back_refresh_fails_with_its_reason_and_what_to_do() -> None:
    result = RolloutResult("r-1", "RollbackSuccessful", "Instance refresh failed: i-1 bad", 60.0)
    with pytest.raises(RolloutFailed, match="RollbackSuccessful: Instance refresh failed: i-1 bad"):
        check_rollout(result, None)


def test_a_successful_refresh_without_failures_passes() -> None:
    check_rollout(RolloutResult("r-1", "Successful", "", 10.0), traffic_report([]))
