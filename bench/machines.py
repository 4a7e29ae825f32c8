"""Time `bake` and instance boots in the local region, median of N.

    bake                    render + bundle + Packer: builder boot, provisioning, CreateImage
    RunInstances → /healthz the baked app answering on its private IP, for 1 and for 3 instances
                            launched in one call (the slowest of the 3 counts)

Run on demand: .venv/bin/python bench/machines.py [--runs 3]
It uses a local region and build directory of its own, on a free port, and stops them after.
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request
from typing import Any

from sandbox import local_region, quiet, timed

from webfleet.stages.bake import bake
from webfleet.stages.render import render
from webfleet.targets import cloud_target

ANSWER_TIMEOUT_SECONDS = 300.0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


def boot_to_healthz(ec2: Any, ami_id: str, user_data: str, count: int, port: int) -> float:
    """Seconds from RunInstances until every new instance answers /healthz; then terminates."""
    started = time.monotonic()
    reservation = ec2.run_instances(
        ImageId=ami_id,
        MinCount=count,
        MaxCount=count,
        UserData=user_data,
        MetadataOptions={"HttpTokens": "required"},
    )
    instances = reservation["Instances"]
    waiting = {i["InstanceId"]: f"http://{i['PrivateIpAddress']}:{port}/healthz" for i in instances}
    try:
        while waiting:
            if time.monotonic() - started > ANSWER_TIMEOUT_SECONDS:
                raise SystemExit(f"no answer from {sorted(waiting)} in {ANSWER_TIMEOUT_SECONDS} s")
            for instance_id, url in list(waiting.items()):
                if _answers(url):
                    del waiting[instance_id]
            time.sleep(0.1)
        return time.monotonic() - started
    finally:
        ids = [i["InstanceId"] for i in instances]
        ec2.terminate_instances(InstanceIds=ids)
        while any(
            i["State"]["Name"] != "terminated"
            for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
            for i in r["Instances"]
        ):
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    timings: dict[str, list[float]] = {
        "bake": [],
        "boot 1 → /healthz": [],
        "boot 3 → /healthz": [],
    }
    with local_region() as (stack, paths, _):
        ami_id = ""
        for run in range(1, args.runs + 1):
            result = None

            def run_bake() -> None:
                nonlocal result
                result = bake(stack, paths, quiet())

            timings["bake"].append(timed(run_bake))
            assert result is not None
            ami_id = result.ami_id
            print(f"run {run}: bake {timings['bake'][-1]:.1f} s ({ami_id})")
        ec2 = cloud_target(stack).ec2()
        user_data = render(stack, paths).user_data.read_text()
        for run in range(1, args.runs + 1):
            for count in (1, 3):
                seconds = boot_to_healthz(ec2, ami_id, user_data, count, stack.app.port)
                timings[f"boot {count} → /healthz"].append(seconds)
                print(f"run {run}: {count} instance(s) answering /healthz in {seconds:.1f} s")
    print(f"\nmedian of {args.runs} runs:")
    for name, values in timings.items():
        print(f"  {name:<18} {statistics.median(values):6.1f} s")


if __name__ == "__main__":
    main()
