"""webfleet/junit.py: verify's checks as JUnit XML that CI systems read."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from pathlib import Path

from webfleet.stages.verify.checks import Check
from webfleet.stages.verify.junit import junit_document, write_junit

CHECKS = [
    Check(
        "test_app_service_is_enabled_and_running", "i-1 (10.0.0.1)", True, "", 0.5, group="specs"
    ),
    Check(
        "test_user_data_holds_no_secret_values",
        "i-1 (10.0.0.1)",
        True,
        "no secrets",
        0.0,
        skipped=True,
        group="specs",
    ),
    Check(
        "HTTP listener :80 forward",
        "alb:80",
        False,
        "GET /healthz → 500 from i-1",
        0.25,
        group="http",
    ),
]


def test_one_suite_per_group_one_case_per_check_with_counts() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    root = ElementTree.fromstring(junit_document("webfleet.verify", CHECKS, timestamp=when))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert set(suites) == {"webfleet.verify.specs", "webfleet.verify.http"}
    assert suites["webfleet.verify.specs"].get("tests") == "2"
    assert suites["webfleet.verify.http"].get("failures") == "1"
    assert suites["webfleet.verify.http"].get("timestamp") == "2026-01-02T03:04:05+00:00"
    cases = {case.get("name"): case for case in root.iter("testcase")}
    failed = cases["HTTP listener :80 forward [alb:80]"]
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message") == "GET /healthz → 500 from i-1"
    assert failed.get("time") == "0.250"
    assert (
        cases["test_user_data_holds_no_secret_values [i-1 (10.0.0.1)]"].find("skipped") is not None
    )
    passed = cases["test_app_service_is_enabled_and_running [i-1 (10.0.0.1)]"]
    assert passed.find("failure") is None and passed.find("skipped") is None


def test_details_are_escaped_and_the_file_is_written(tmp_path: Path) -> None:
    odd = Check('a <b> & "c"', "t", False, "saw <html> & 'quotes'", 0.0)
    path = write_junit(tmp_path / "verify" / "junit.xml", "suite", [odd])
    case = ElementTree.parse(path).getroot().find("testsuite/testcase")
    assert case is not None and case.get("name") == 'a <b> & "c" [t]'
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "saw <html> & 'quotes'"


def test_no_checks_is_an_empty_but_valid_report() -> None:
    root = ElementTree.fromstring(junit_document("suite", []))
    assert root.get("tests") == "0" and list(root) == []
