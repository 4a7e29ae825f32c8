"""`invoke load`'s plan checks and its CPU burn command (run for real in a shell here: the same
/bin/sh an instance has)."""

from __future__ import annotations

import subprocess
import time

import pytest

from webfleet.errors import WebfleetError
from webfleet.stages.load import LoadPlan, cpu_burn_command


def test_rps_zero_is_only_for_a_cpu_burn() -> None:
    LoadPlan(rps=0, duration=30, settle=0, cpu=2).check()
    with pytest.raises(WebfleetError, match=r"--rps must be between 1 and 500 .*0 only with --cpu"):
        LoadPlan(rps=0, duration=30, settle=0).check()
    with pytest.raises(WebfleetError, match="--cpu must be between 0 and 16"):
        LoadPlan(rps=10, duration=30, settle=0, cpu=99).check()


def test_the_burn_detaches_keeps_n_cpus_busy_and_ends_by_itself() -> None:
    started = time.monotonic()
    subprocess.run(["sh", "-c", cpu_burn_command(1, 2)], check=True, timeout=10)
    assert time.monotonic() - started < 1.5  # detached: the ssh session returns at once
    time.sleep(1)
    busy = subprocess.run(
        ["pgrep", "-f", "while :; do :; done"], capture_output=True, text=True, check=False
    )
    assert busy.stdout.split(), "the busy loop is not running"
    deadline = time.monotonic() + 10
    # timeout signals its whole process group: the loops end with it.
    while (
        subprocess.run(["pgrep", "-f", "while :; do :; done"], capture_output=True).returncode == 0
    ):
        assert time.monotonic() < deadline, "the burn outlived its timeout"
        time.sleep(0.2)
