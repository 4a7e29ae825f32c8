"""Time each fault the fleet survives, with the example stack under a request stream.

One local region, the example stack baked and deployed (2 instances over 2 AZs). For each fault,
on one InService member while requests go through the ALB back to back: the seconds until the
group serves from two healthy targets again (a replacement registered and healthy, or the same
instance back for a reboot), and the failed requests out of how many. Faults: EC2
TerminateInstances, the machine's process killed (its host "failed"), Auto Scaling
TerminateInstanceInAutoScalingGroup, EC2 StopInstances, EC2 RebootInstances.
Run on demand, as root: .venv/bin/python bench/faults.py
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from sandbox import deployed_fleet, local_region

from webfleet import traffic
from webfleet.fleet import FleetView
from webfleet.localregion.ec2.machines import MachineRuntime
from webfleet.stages.verify.settle import wait_for_fleet

RECOVERY_TIMEOUT_SECONDS = 300.0


def serving_from_two(fleet: FleetView, victim: str, replaced: bool) -> bool:
    ids = fleet.in_service_ids()
    states = fleet.target_states()
    healthy = [i for i in ids if states.get(i) == "healthy"]
    return len(healthy) == 2 and (not replaced or victim not in ids)


def main() -> None:
    with local_region() as (stack, paths, settings):
        deployed = deployed_fleet(stack, paths)
        deployment, target, fleet = deployed.deployment, deployed.target, deployed.fleet
        ec2, autoscaling = target.ec2(), target.autoscaling()
        runtime = MachineRuntime(settings.state_dir)

        def kill_machine(instance_id: str) -> Any:
            (machine,) = [m for m in runtime.list() if m.instance_id == instance_id]
            assert machine.pid is not None
            os.kill(machine.pid, signal.SIGKILL)

        faults: list[tuple[str, Callable[[str], Any], bool]] = [
            ("ec2 terminate-instances", lambda i: ec2.terminate_instances(InstanceIds=[i]), True),
            ("machine process killed", kill_machine, True),
            (
                "terminate-instance-in-auto-scaling-group",
                lambda i: autoscaling.terminate_instance_in_auto_scaling_group(
                    InstanceId=i, ShouldDecrementDesiredCapacity=False
                ),
                True,
            ),
            ("ec2 stop-instances", lambda i: ec2.stop_instances(InstanceIds=[i]), True),
            ("ec2 reboot-instances", lambda i: ec2.reboot_instances(InstanceIds=[i]), False),
        ]
        listener = traffic.Listener("HTTP", stack.load_balancer.http.port, "forward")
        rows = []
        for name, fault, replaced in faults:
            settled, _ = wait_for_fleet(fleet, 2, timeout=600)
            assert settled.passed, settled.detail
            victim = sorted(fleet.in_service_ids())[0]
            stream = traffic.RequestStream(
                lambda: traffic.fetch(deployment.alb_dns_name, listener, "/")
            ).start()
            time.sleep(2)
            started = time.monotonic()
            fault(victim)
            if not replaced:  # a reboot: first wait for the target to notice, if it does
                time.sleep(5)
            while not serving_from_two(fleet, victim, replaced):
                if time.monotonic() - started > RECOVERY_TIMEOUT_SECONDS:
                    break
                time.sleep(0.5)
            recovered = time.monotonic() - started
            time.sleep(2)
            samples = stream.stop()
            failed = sum(1 for s in samples if not s.answer.ok)
            rows.append((name, recovered, failed, len(samples)))
            print(f"{name:42} serving from two healthy targets after {recovered:6.1f} s; "
                  f"{failed} of {len(samples)} requests failed")  # fmt: skip
        print()
        print(f"{'fault':42} {'recovered s':>12} {'failed':>14}")
        for name, recovered, failed, total in rows:
            print(f"{name:42} {recovered:12.1f} {f'{failed}/{total}':>14}")


if __name__ == "__main__":
    main()
