"""`invoke deploy` refuses to start, with one clear message, when something it needs is missing.

Each case runs the real command line; none of them may start Terraform or leave state behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from webfleet.localregion.runtime.ports import free_port
from webfleet.localregion.runtime.settings import STATE_DIR_ENV
from webfleet.paths import BUILD_DIR_ENV

INVOKE = str(ROOT / ".venv" / "bin" / "invoke")


def _deploy(
    tmp_path: Path, stack_text: str, **environment: str
) -> subprocess.CompletedProcess[str]:
    stack_file = tmp_path / "webfleet.toml"
    stack_file.write_text(stack_text)
    env = {
        **os.environ,
        STATE_DIR_ENV: str(tmp_path / "region"),
        BUILD_DIR_ENV: str(tmp_path / "build"),
        **environment,
    }
    return subprocess.run(
        [INVOKE, "deploy", "--stack", str(stack_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _stack(port: int) -> str:
    return (ROOT / "webfleet.toml").read_text().replace("api_port = 4599", f"api_port = {port}")


def _nothing_started(tmp_path: Path) -> None:
    assert not (tmp_path / "build" / "local" / "logs").exists(), "Terraform must not have run"
    assert not (tmp_path / "region" / "region.pid").exists(), "the region must not have started"


def test_malformed_stack_file_names_the_field_and_starts_nothing(tmp_path: Path) -> None:
    bad = _stack(free_port()).replace("min_size = 2\ndesired", "min_size = 9\ndesired", 1)
    result = _deploy(tmp_path, bad)
    assert result.returncode == 1
    assert "asg: sizes must satisfy min_size <= desired_capacity <= max_size" in result.stderr
    assert "Traceback" not in result.stderr
    _nothing_started(tmp_path)


def test_missing_terraform_names_the_fix(tmp_path: Path) -> None:
    # A PATH without /usr/local/bin, where Terraform is installed.
    result = _deploy(tmp_path, _stack(free_port()), PATH="/usr/bin:/bin")
    assert result.returncode == 1
    assert "terraform not found on PATH: install Terraform >= 1.9" in result.stderr
    _nothing_started(tmp_path)


def test_missing_provider_mirror_names_the_provider_and_path(tmp_path: Path) -> None:
    result = _deploy(
        tmp_path, _stack(free_port()), WEBFLEET_TF_PLUGIN_MIRROR=str(tmp_path / "no-mirror")
    )
    assert result.returncode == 1
    assert "hashicorp/aws 5.100.0 not found in the filesystem mirror" in result.stderr
    assert str(tmp_path / "no-mirror") in result.stderr
    assert "Providers are never downloaded" in result.stderr
    _nothing_started(tmp_path)


def test_local_region_port_taken_names_the_port(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = _deploy(tmp_path, _stack(port))
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already taken by another program" in result.stderr
    assert "api_port" in result.stderr
    assert not (tmp_path / "build" / "local" / "logs").exists()
    assert not (tmp_path / "region" / "region.pid").exists()


@pytest.mark.parametrize("task", ["local.up", "local.status", "local.down"])
def test_local_tasks_refuse_an_aws_environment(tmp_path: Path, task: str) -> None:
    stack_file = tmp_path / "webfleet.toml"
    stack_file.write_text(_stack(free_port()))
    result = subprocess.run(
        [INVOKE, task, "--stack", str(stack_file), "--env", "aws"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "environment aws is kind 'aws'" in result.stderr
