"""Time deploy against the local region: cold deploy, no-op deploy and destroy, median of N.

Run on demand: .venv/bin/python bench/deploy.py [--runs 3]
It uses a local region and build directory of its own, on a free port, and stops them after.
"""

from __future__ import annotations

import argparse
import statistics

from sandbox import local_region, quiet, timed

from webfleet.stages.deploy import apply as deploy_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    timings: dict[str, list[float]] = {"cold deploy": [], "no-op deploy": [], "destroy": []}
    with local_region() as (stack, paths, _):
        for run in range(1, args.runs + 1):
            timings["cold deploy"].append(timed(lambda: deploy_stage.deploy(stack, paths, quiet())))
            timings["no-op deploy"].append(
                timed(lambda: deploy_stage.deploy(stack, paths, quiet()))
            )
            timings["destroy"].append(timed(lambda: deploy_stage.destroy(stack, paths, quiet())))
            print(f"run {run}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in timings.items()))
    print(f"\nmedian of {args.runs} runs:")
    for name, values in timings.items():
        print(f"  {name:<13} {statistics.median(values):6.1f} s")


if __name__ == "__main__":
    main()
