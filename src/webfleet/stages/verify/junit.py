"""verify's checks as JUnit XML, the report format CI systems show per test."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from webfleet.stages.verify.checks import Check, summarize


def junit_document(
    suite: str, checks: Sequence[Check], *, timestamp: datetime | None = None
) -> str:
    """A <testsuites> document: one <testsuite> per check group, one <testcase> per check."""
    summary = summarize(checks)
    root = ElementTree.Element(
        "testsuites",
        name=suite,
        tests=str(summary.total),
        failures=str(summary.failed),
        errors="0",
        skipped=str(summary.skipped),
        time=_seconds(summary.seconds),
    )
    when = (timestamp or datetime.now(UTC)).isoformat(timespec="seconds")
    groups: dict[str, list[Check]] = {}
    for check in checks:
        groups.setdefault(check.group, []).append(check)
    for group, members in groups.items():
        counts = summarize(members)
        element = ElementTree.SubElement(
            root,
            "testsuite",
            name=f"{suite}.{group}",
            tests=str(counts.total),
            failures=str(counts.failed),
            errors="0",
            skipped=str(counts.skipped),
            time=_seconds(counts.seconds),
            timestamp=when,
        )
        for check in members:
            case = ElementTree.SubElement(
                element,
                "testcase",
                classname=f"{suite}.{group}",
                name=f"{check.name} [{check.target}]",
                time=_seconds(check.seconds),
            )
            if check.skipped:
                ElementTree.SubElement(case, "skipped", message=check.detail)
            elif not check.passed:
                failure = ElementTree.SubElement(case, "failure", message=check.detail)
                failure.text = check.describe()
            elif check.detail:
                output = ElementTree.SubElement(case, "system-out")
                output.text = check.detail
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, suite: str, checks: Sequence[Check]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_document(suite, checks), encoding="utf-8")
    return path


def _seconds(value: float) -> str:
    return f"{value:.3f}"
