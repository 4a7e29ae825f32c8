"""Time a rolling instance refresh of 2 and of 4 instances under a request stream.

For each size: a fleet of that size (min = desired) running the baked app behind the ALB, then
a refresh started as Terraform starts one (the stack's preferences: 50 % minimum healthy,
60 s warmup, auto rollback), followed to its end while requests go through the ALB. Prints the
refresh's duration and the failed-request count.
Run on demand: .venv/bin/python bench/refresh.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sandbox import deployed_fleet, local_region, quiet

from webfleet import traffic
from webfleet.stages import rollout
from webfleet.stages.deploy import apply as deploy_stage

SIZES = (2, 4)


def sized(size: int) -> Callable[[str], str]:
    def edit(text: str) -> str:
        return text.replace(
            "min_size = 2\ndesired_capacity = 2\nmax_size = 4",
            f"min_size = {size}\ndesired_capacity = {size}\nmax_size = {size + 2}",
        )

    return edit


def refresh_once(size: int) -> tuple[float, rollout.TrafficReport, str]:
    with local_region(sized(size)) as (stack, paths, _settings):
        assert stack.asg.desired_capacity == size, "the stack edit did not apply"
        deployed = deployed_fleet(stack, paths)
        deployment, target, fleet = deployed.deployment, deployed.target, deployed.fleet
        preferences = stack.asg.instance_refresh
        refresh_id = target.autoscaling().start_instance_refresh(
            AutoScalingGroupName=deployment.asg_name,
            Strategy="Rolling",
            Preferences={
                "MinHealthyPercentage": preferences.min_healthy_percentage,
                "InstanceWarmup": preferences.instance_warmup,
                "AutoRollback": preferences.auto_rollback,
            },
        )["InstanceRefreshId"]
        listener = traffic.Listener("HTTP", stack.load_balancer.http.port, "forward")
        stream = traffic.RequestStream(
            fetch=lambda: traffic.fetch(deployment.alb_dns_name, listener, "/")
        )
        result, seen = rollout.watched_rollout(fleet, refresh_id, lambda _: None, 1800, stream)
        deploy_stage.destroy(stack, paths, quiet())
        assert seen is not None
        return result.seconds, seen, result.status


def main() -> None:
    rows = []
    for size in SIZES:
        started = time.monotonic()
        seconds, traffic, status = refresh_once(size)
        rows.append((size, status, seconds, traffic, time.monotonic() - started))
    print("\ninstances  status       refresh s  requests  failed  (whole run s)")
    for size, status, seconds, traffic, whole in rows:
        print(
            f"{size:>9}  {status:<11}  {seconds:9.1f}  {traffic.requests:8}  "
            f"{traffic.failed:6}  ({whole:.0f})"
        )


if __name__ == "__main__":
    main()
