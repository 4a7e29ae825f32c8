"""Time target tracking on the local region: load start → a new instance healthy, load end →
back at the minimum size.

A 2-instance fleet of the baked app (example stack: 1000 requests per target per minute, max 4)
gets 60 requests/s through the ALB for 90 s, then none; the fleet is sampled every 2 s.
Run on demand: .venv/bin/python bench/scaling.py
"""

from __future__ import annotations

from sandbox import deployed_fleet, local_region, quiet

from webfleet import traffic
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.stages.load import LoadPlan, run_load

PLAN = LoadPlan(rps=60, duration=90, settle=600)


def main() -> None:
    with local_region() as (stack, paths, _settings):
        deployed = deployed_fleet(stack, paths)
        deployment, fleet = deployed.deployment, deployed.fleet
        listener = traffic.Listener("HTTP", stack.load_balancer.http.port, "forward")
        report = run_load(
            PLAN, lambda: traffic.fetch(deployment.alb_dns_name, listener, PLAN.path), fleet, print
        )
        deploy_stage.destroy(stack, paths, quiet())
    first_out = next((s.at for s in report.samples if s.desired > 2), None)
    first_healthy = next((s.at for s in report.samples if s.healthy > 2), None)
    print(f"\n{report.sent} requests, {report.failed} failed; peak desired {report.peak_desired}")
    print(f"  load start → scale-out decided   {first_out} s")
    print(f"  load start → new instance healthy {first_healthy} s")
    print(f"  load end → back at the minimum    {report.settled_seconds} s")
    for activity in report.activities:
        print(f"  {activity}")


if __name__ == "__main__":
    main()
