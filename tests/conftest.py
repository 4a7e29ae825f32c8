"""Fixtures that run the real local region, Terraform and Packer in a throwaway place."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from webfleet.cli.progress import Progress
from webfleet.config import EnvironmentStack, load_stack
from webfleet.localregion.elb.access_logs import INTERVAL_ENV as ACCESS_LOG_INTERVAL_ENV
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.ports import free_port
from webfleet.localregion.runtime.settings import (
    DEFAULT_VPC_CIDR_ENV,
    STATE_DIR_ENV,
    RegionSettings,
)
from webfleet.paths import ProjectPaths
from webfleet.targets import CloudTarget, cloud_target, region_settings

ROOT = Path(__file__).resolve().parents[1]


def worker_index() -> int:
    """0 in a plain run; n for pytest-xdist's worker gw<n>."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def pytest_configure(config: pytest.Config) -> None:
    # Workers run local regions side by side: each needs a default VPC (Packer's builders, the
    # region tests' instances) whose subnets no other region's bridges hold.
    index = worker_index()
    if index:
        os.environ.setdefault(DEFAULT_VPC_CIDR_ENV, f"172.{31 - index}.0.0/16")
    # The tests' regions publish ALB access logs every 2 s, not every 5 minutes as ELB does.
    os.environ.setdefault(ACCESS_LOG_INTERVAL_ENV, "2")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest modules first (their `runtime_minutes` mark), so that with several workers the long
    ones do not end up last on one of them; the order within a module stays as written."""

    def minutes(item: pytest.Item) -> float:
        mark = item.get_closest_marker("runtime_minutes")
        return float(mark.args[0]) if mark else 0.0

    items.sort(key=lambda item: -minutes(item))


def stack_text_for_this_worker(text: str) -> str:
    """The example stack with a VPC CIDR of this worker's: the same as written for worker 0."""
    index = worker_index()
    assert 'vpc_cidr = "10.42.0.0/16"' in text
    return text.replace('"10.42.', f'"10.{42 + index}.') if index else text


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

    @contextmanager
    def running_region(self) -> Iterator[RegionSettings]:
        """The sandbox's local region, up for the block and down after it."""
        settings = region_settings(self.stack())
        daemon.up(settings)
        try:
            yield settings
        finally:
            daemon.down(settings)


def quiet_progress() -> Progress:
    return Progress(Console(file=io.StringIO()), live=False)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not installed: run scripts/bootstrap")
    base = tmp_path_factory.mktemp("sandbox")
    port = free_port()
    stack_text = stack_text_for_this_worker(
        (ROOT / "webfleet.toml")
        .read_text()
        .replace("api_port = 4599", f"api_port = {port}")
        .replace('source = "examples/sample"', f'source = "{ROOT / "examples" / "sample"}"')
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
