"""A task that meets an exception no stage explains prints one line naming the log with the
traceback, and exits 1; --debug prints the traceback too. Bad input is never such a crash."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from invoke.exceptions import Exit

from tests.conftest import ROOT
from webfleet.cli import crash_report
from webfleet.cli.tasks import _run

BIN = ROOT / ".venv" / "bin"


def explode(argument: str) -> None:
    raise RuntimeError(f"the disk is full of {argument}")


def test_an_unexpected_exception_is_one_line_and_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(crash_report.CRASH_DIR_ENV, str(tmp_path))
    with pytest.raises(Exit) as exited:
        _run(explode, "cats")
    assert exited.value.code == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    (log,) = tmp_path.glob("*-explode-*.log")
    assert "explode failed unexpectedly (RuntimeError: the disk is full of cats)" in " ".join(
        stderr.split()
    )
    assert str(log) in stderr.replace("\n", "")
    assert 'raise RuntimeError(f"the disk is full of {argument}")' in log.read_text()


def test_debug_prints_the_traceback_as_well(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(crash_report.CRASH_DIR_ENV, str(tmp_path))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)  # what invoke's --debug sets
    try:
        with pytest.raises(Exit):
            _run(explode, "dogs")
    finally:
        root.setLevel(level)
    stderr = capsys.readouterr().err
    assert "Traceback" in stderr and "the disk is full of dogs" in stderr


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: d, "is a directory"),
        (
            lambda d: (
                (d / "webfleet.toml").write_bytes(b'[app]\nname = "\xff"\n') and d / "webfleet.toml"
            ),
            "not UTF-8 text",
        ),
    ],
    ids=["directory", "not utf-8"],
)
def test_bad_stack_files_through_the_command_are_errors_not_crashes(
    tmp_path: Path, make: object, says: str
) -> None:
    stack = make(tmp_path)  # type: ignore[operator]
    result = subprocess.run(
        [BIN / "webfleet", "render", "--stack", str(stack)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "unexpectedly" not in result.stderr
