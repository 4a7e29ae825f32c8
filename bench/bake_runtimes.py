"""Time `bake` per runtime: the sample (python, pyproject), django (python, requirements.txt with
hashes), node (npm ci, Debian's nodejs) and static (Debian's nginx), each twice:

    cold    a new build directory: the bundle is built (pip wheel / npm ci / .debs), then Packer
    cached  the same again: the bundle is reused (nothing changed), then Packer

Prints seconds for the bundle and the whole bake, the bundle's size, and cached/cold ratios.
pip's, npm's and webfleet's apt caches (/var/cache/webfleet/apt) stay as they are: a first run
on a new machine downloads more. Run on demand, as root: .venv/bin/python bench/bake_runtimes.py
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

from sandbox import ROOT, local_region, quiet

from webfleet.config import load_stack
from webfleet.paths import ProjectPaths
from webfleet.stages.bake import bake, bundle_request
from webfleet.stages.bundle import build_bundle
from webfleet.stages.render import render

EXAMPLES = ("sample", "django", "node", "static")


def example_stack(name: str, scratch: Path, api_port: int) -> Path:
    """A copy of the example (its own directory), its stack on the benchmark's region."""
    directory = scratch / name
    shutil.copytree(ROOT / "examples" / name, directory)
    if name == "sample":
        text = (ROOT / "webfleet.toml").read_text().replace('"examples/sample"', '"."')
    else:
        text = (directory / "webfleet.toml").read_text()
    stack_file = directory / "webfleet.toml"
    stack_file.write_text(re.sub(r"api_port = \d+", f"api_port = {api_port}", text))
    return stack_file


def main() -> None:
    rows: list[tuple[str, str, float, float, float]] = []
    with local_region() as (_stack, _paths, settings), tempfile.TemporaryDirectory() as scratch:
        for name in EXAMPLES:
            stack = load_stack(example_stack(name, Path(scratch), settings.port))
            paths = ProjectPaths(ROOT, build_root=Path(scratch) / f"build-{name}")
            for attempt in ("cold", "cached"):
                started = time.monotonic()
                request = bundle_request(stack, paths, render(stack, paths))
                bundle = build_bundle(request, paths.build_dir("local") / "bundle")
                bundled = time.monotonic() - started
                bake(stack, paths, quiet())
                total = time.monotonic() - started
                size = bundle.path.stat().st_size / 1e6
                rows.append((f"{name} ({stack.app.runtime})", attempt, bundled, total, size))
                print(f"{name:>7} {attempt:>6}: bundle {bundled:6.1f} s, bake {total:6.1f} s")
    print(f"\n{'app':<18} {'run':<7} {'bundle s':>9} {'bake s':>8} {'bundle MB':>10}")
    for app, attempt, bundled, total, size in rows:
        print(f"{app:<18} {attempt:<7} {bundled:9.1f} {total:8.1f} {size:10.1f}")
    print("\ncached / cold bake time:")
    for cold, cached in zip(rows[::2], rows[1::2], strict=True):
        print(f"  {cold[0]:<18} {cached[3] / cold[3]:.2f}")


if __name__ == "__main__":
    main()
