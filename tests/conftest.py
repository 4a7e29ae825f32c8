"""Fixtures that run the real local region, Terraform and Packer in a throwaway place."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from webfleet.cli.progress import Progress
from webfleet.config import EnvironmentStack, load_stack
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.ports import free_port
from webfleet.localregion.runtime.settings import STATE_DIR_ENV
from webfleet.paths import ProjectPaths
from webfleet.targets import CloudTarget, cloud_target, region_settings

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Sandbox:
    """A stack file, build directory and local region of the test's own."""

    stack_file: Path
    paths: ProjectPaths
    region_state: Path
    api_port: int

    def stack(self, env_name: str = "local") -> EnvironmentStack:
        return load_stack(self.stack_file, env_name)

    def target(self) -> CloudTarget:
        return cloud_target(self.stack())

    def environment(self) -> dict[str, str]:
        """Process environment for running `invoke` against this sandbox."""
        return {**os.environ, STATE_DIR_ENV: str(self.region_state)}


def quiet_progress() -> Progress:
    return Progress(Console(file=io.StringIO()), live=False)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not installed: run scripts/bootstrap")
    base = tmp_path_factory.mktemp("sandbox")
    port = free_port()
    stack_text = (
        (ROOT / "webfleet.toml").read_text().replace("api_port = 4599", f"api_port = {port}")
    )
    stack_file = base / "webfleet.toml"
    stack_file.write_text(stack_text)
    state = base / "region"
    previous = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(state)
    box = Sandbox(stack_file, ProjectPaths(ROOT, build_root=base / "build"), state, port)
    try:
        yield box
    finally:
        daemon.down(region_settings(box.stack()))
        if previous is None:
            os.environ.pop(STATE_DIR_ENV, None)
        else:
            os.environ[STATE_DIR_ENV] = previous
