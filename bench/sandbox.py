"""What the benchmarks share: a throwaway local region, and timing with quiet progress.

The benchmarks run as scripts (.venv/bin/python bench/deploy.py), so bench/ is on sys.path and
they import this as `sandbox`.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from webfleet.cli.progress import Progress
from webfleet.config import EnvironmentStack, load_stack
from webfleet.fleet import Deployment, FleetView
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.ports import free_port
from webfleet.localregion.runtime.settings import STATE_DIR_ENV, RegionSettings
from webfleet.paths import ProjectPaths
from webfleet.stages.bake import bake
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.stages.deploy.outputs import read_deployment
from webfleet.stages.verify.settle import wait_for_fleet
from webfleet.targets import CloudTarget, cloud_target, region_settings

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def local_region(
    edit_stack: Callable[[str], str] = lambda text: text,
) -> Iterator[tuple[EnvironmentStack, ProjectPaths, RegionSettings]]:
    """A stack file, build directory and running local region of the benchmark's own.

    The region listens on a free port and keeps its state in a temporary directory (set as
    WEBFLEET_REGION_STATE_DIR for this process); it is stopped and everything removed after.
    edit_stack changes the example stack file's text (e.g. the fleet's size) first.
    """
    with tempfile.TemporaryDirectory(prefix="webfleet-bench-") as scratch:
        base = Path(scratch)
        os.environ[STATE_DIR_ENV] = str(base / "region")
        stack_file = base / "webfleet.toml"
        stack_file.write_text(
            edit_stack(
                (ROOT / "webfleet.toml")
                .read_text()
                .replace("api_port = 4599", f"api_port = {free_port()}")
                .replace('source = "examples/sample"', f'source = "{ROOT / "examples" / "sample"}"')
            )
        )
        stack = load_stack(stack_file)
        paths = ProjectPaths(ROOT, build_root=base / "build")
        settings = region_settings(stack)
        daemon.up(settings, on_progress=print)
        try:
            yield stack, paths, settings
        finally:
            daemon.down(settings)


def quiet() -> Progress:
    return Progress(Console(file=io.StringIO()), live=False)


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


@dataclass(frozen=True)
class DeployedFleet:
    deployment: Deployment
    target: CloudTarget
    fleet: FleetView


def deployed_fleet(stack: EnvironmentStack, paths: ProjectPaths) -> DeployedFleet:
    """The stack baked and deployed, once its desired number of instances serve (bounded)."""
    bake(stack, paths, quiet())
    deploy_stage.deploy(stack, paths, quiet())
    deployment = read_deployment(paths, stack.env_name)
    target = cloud_target(stack)
    fleet = FleetView(target, deployment)
    settled, _ = wait_for_fleet(fleet, stack.asg.desired_capacity, timeout=600)
    assert settled.passed, settled.detail
    return DeployedFleet(deployment, target, fleet)
