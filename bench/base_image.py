"""Time the base image: a cold build into a throwaway cache, then a cached ensure.

Run on demand, as root: .venv/bin/python bench/base_image.py [--keep]
The throwaway cache is under /var/tmp and removed after unless --keep.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from webfleet.localregion.host.mounts import remove_directory_safely
from webfleet.localregion.images.baseimage import ensure_base_image, remove_stale_builds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the throwaway cache")
    args = parser.parse_args()

    cache = Path(tempfile.mkdtemp(prefix="webfleet-bench-images-", dir="/var/tmp"))
    started = time.monotonic()

    def show(message: str) -> None:
        print(f"  {time.monotonic() - started:6.1f} s  {message}", flush=True)

    try:
        print(f"cold build into {cache}")
        image = ensure_base_image(cache, show)
        cold = time.monotonic() - started
        cached_started = time.monotonic()
        ensure_base_image(cache, lambda _: None)
        cached = time.monotonic() - cached_started
    finally:
        if not args.keep:
            remove_stale_builds(cache)
            remove_directory_safely(cache)
    print(f"image          {image.name} ({image.size_bytes / 1e6:.0f} MB)")
    print(f"versions       {image.package_versions}")
    print(f"cold build     {cold:.1f} s")
    print(f"cached ensure  {cached * 1000:.1f} ms")


if __name__ == "__main__":
    main()
