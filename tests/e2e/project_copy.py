"""A copy of the checkout for e2e tests that change the app, and the real CLI run against it.

WEBFLEET_PROJECT_DIR points the CLI at the copy, so a test can break or bump the app without
touching the checkout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Sandbox
from webfleet.localregion.runtime.settings import STATE_DIR_ENV
from webfleet.paths import BUILD_DIR_ENV, PROJECT_DIR_ENV, ProjectPaths

PROJECT_PARTS = ("app", "packer", "templates", "user_data", "terraform", "specs")
# bake (~1-2 min) + deploy (~2 min) + rollout or verify with failover (boots, health checks).
PIPELINE_TIMEOUT_SECONDS = 1800


def copy_project(sandbox: Sandbox, root: Path) -> ProjectPaths:
    for part in PROJECT_PARTS:
        shutil.copytree(
            ROOT / part,
            root / part,
            ignore=shutil.ignore_patterns(".terraform", "*.egg-info", "__pycache__"),
        )
    (root / ".venv").symlink_to(ROOT / ".venv")  # terraform.rc: the provider mirror
    return ProjectPaths(root, build_root=sandbox.paths.build_root)


def invoke(
    sandbox: Sandbox, project: ProjectPaths, *args: str, timeout: float = PIPELINE_TIMEOUT_SECONDS
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the real CLI against the sandbox and the project copy; its --json document."""
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "invoke"),
            *args,
            "--stack",
            str(sandbox.stack_file),
            "--json",
        ],
        cwd=ROOT,
        env={
            **sandbox.environment(),
            STATE_DIR_ENV: str(sandbox.region_state),
            BUILD_DIR_ENV: str(sandbox.paths.build_root),
            PROJECT_DIR_ENV: str(project.root),
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        document: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from invoke {args[0]} (exit {result.returncode}):\n{result.stderr}")
    return result, document
