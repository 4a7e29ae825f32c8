"""Time the whole pipeline on the local region with the base image cached, stage by stage.

    bake → deploy → verify (no failover), then verify --failover alone, then destroy

Prints each stage's seconds, the failover check's timings and its failed-request count.
Run on demand: .venv/bin/python bench/pipeline.py
"""

from __future__ import annotations

import time

from sandbox import local_region, quiet

from webfleet.stages.bake import bake
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.stages.verify import run as verify_stage


def main() -> None:
    seconds: dict[str, float] = {}
    with local_region() as (stack, paths, _settings):
        started = time.monotonic()
        bake(stack, paths, quiet())
        seconds["bake"] = time.monotonic() - started
        mark = time.monotonic()
        deploy_stage.deploy(stack, paths, quiet())
        seconds["deploy"] = time.monotonic() - mark
        mark = time.monotonic()
        verified = verify_stage.verify(stack, paths, quiet(), failover=False)
        seconds["verify"] = time.monotonic() - mark
        seconds["pipeline (bake → deploy → verify)"] = time.monotonic() - started
        mark = time.monotonic()
        with_failover = verify_stage.verify(stack, paths, quiet(), failover=True)
        seconds["verify --failover"] = time.monotonic() - mark
        mark = time.monotonic()
        deploy_stage.destroy(stack, paths, quiet())
        seconds["destroy"] = time.monotonic() - mark
    print(f"\nverify: {verified.summary}; with failover: {with_failover.summary}")
    for check in with_failover.checks:
        if check.group == "failover":
            print(f"  {check.name}: {check.detail} ({check.seconds:.1f} s)")
    print("\nseconds:")
    for name, value in seconds.items():
        print(f"  {name:<36} {value:7.1f}")


if __name__ == "__main__":
    main()
