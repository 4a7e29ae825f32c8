"""Time deploy against the local region: cold deploy, no-op deploy and destroy, median of N.

Run on demand: .venv/bin/python bench/deploy.py [--runs 3]
It uses a local region and build directory of its own, on a free port, and stops them after.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from webfleet import deploy as deploy_stage
from webfleet.cloud import region_settings
from webfleet.config import load_stack
from webfleet.localregion import daemon
from webfleet.localregion.ports import free_port
from webfleet.localregion.settings import STATE_DIR_ENV
from webfleet.paths import ProjectPaths
from webfleet.progress import Progress

ROOT = Path(__file__).resolve().parents[1]


def _timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="webfleet-bench-") as scratch:
        base = Path(scratch)
        os.environ[STATE_DIR_ENV] = str(base / "region")
        stack_file = base / "webfleet.toml"
        stack_file.write_text(
            (ROOT / "webfleet.toml")
            .read_text()
            .replace("api_port = 4599", f"api_port = {free_port()}")
        )
        stack = load_stack(stack_file)
        paths = ProjectPaths(ROOT, build_root=base / "build")

        def quiet() -> Progress:
            return Progress(Console(file=io.StringIO()), live=False)

        timings: dict[str, list[float]] = {"cold deploy": [], "no-op deploy": [], "destroy": []}
        settings = region_settings(stack)
        daemon.up(settings)
        try:
            for run in range(1, args.runs + 1):
                timings["cold deploy"].append(
                    _timed(lambda: deploy_stage.deploy(stack, paths, quiet()))
                )
                timings["no-op deploy"].append(
                    _timed(lambda: deploy_stage.deploy(stack, paths, quiet()))
                )
                timings["destroy"].append(
                    _timed(lambda: deploy_stage.destroy(stack, paths, quiet()))
                )
                print(f"run {run}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in timings.items()))
        finally:
            daemon.down(settings)
    print(f"\nmedian of {args.runs} runs:")
    for name, values in timings.items():
        print(f"  {name:<13} {statistics.median(values):6.1f} s")


if __name__ == "__main__":
    main()
