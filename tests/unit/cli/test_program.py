"""The `webfleet` command: the checkout's tasks, from any directory, stack file from there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import ROOT

BIN = ROOT / ".venv" / "bin"


def task_names(command: str, cwd: Path) -> set[str]:
    listed = subprocess.run(
        [BIN / command, "--list", "--list-format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(listed.stdout)
    names = {task["name"] for task in document["tasks"]}
    names |= {f"{c['name']}.{t['name']}" for c in document["collections"] for t in c["tasks"]}
    return names


def test_webfleet_offers_the_checkouts_tasks_from_any_directory(tmp_path: Path) -> None:
    names = task_names("webfleet", tmp_path)
    assert names == task_names("invoke", ROOT)
    assert {"init", "bake", "deploy", "verify", "pipeline", "destroy", "local.up"} <= names


def test_webfleet_reads_the_stack_file_of_the_directory_it_runs_in(tmp_path: Path) -> None:
    result = subprocess.run(
        [BIN / "webfleet", "render"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "webfleet.toml" in result.stderr and "file not found" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
