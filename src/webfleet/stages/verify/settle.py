"""Waiting for the fleet to settle: at size, refreshed, on the deployed AMI, targets healthy."""

from __future__ import annotations

import time
from dataclasses import dataclass

from webfleet import refresh_status
from webfleet.fleet import FleetView, Instance
from webfleet.stages.verify.checks import Check
from webfleet.waits import wait_for

# Every InService target unhealthy this long: the fleet will not settle by waiting (broken app).
ALL_UNHEALTHY_GIVE_UP_SECONDS = 30.0


@dataclass(frozen=True)
class FleetState:
    desired: int
    in_service: list[str]
    states: dict[str, str]
    images: dict[str, str]
    refresh: str | None


def fleet_problems(state: FleetState, ami_id: str | None) -> list[str]:
    """Why the fleet is not settled yet (empty: settled)."""
    problems = []
    if len(state.in_service) < state.desired:
        problems.append(f"{len(state.in_service)} of {state.desired} instances InService")
    if state.refresh in refresh_status.IN_PROGRESS:
        problems.append(f"instance refresh {state.refresh}")
    unhealthy = [f"{i} {state.states.get(i, 'unregistered')}" for i in state.in_service
                 if state.states.get(i) != "healthy"]  # fmt: skip
    if unhealthy:
        problems.append("targets not healthy: " + ", ".join(unhealthy))
    if ami_id is not None:
        old = [f"{i} on {image}" for i, image in sorted(state.images.items()) if image != ami_id]
        if old:
            problems.append(f"not on the deployed AMI {ami_id}: " + ", ".join(old))
    return problems


def wait_for_fleet(fleet: FleetView, desired: int, timeout: float) -> tuple[Check, list[Instance]]:
    """Wait (bounded) until the group is at size, refreshed and healthy; report what was seen."""
    ami_id = fleet.deployment.ami_id

    def observe() -> FleetState:
        group = fleet.group()
        in_service = fleet.in_service_ids(group)
        images = {i.instance_id: i.image_id for i in fleet.instances(in_service)}
        return FleetState(
            int(group.get("DesiredCapacity", desired)),
            in_service,
            fleet.target_states(),
            images,
            fleet.refresh_status(),
        )

    unhealthy_since: list[float] = []

    def settled_or_hopeless(state: FleetState) -> bool:
        """Settled; or every InService target has failed its health checks for a while (a
        broken app: waiting out the whole timeout would only delay the verdict)."""
        if not fleet_problems(state, ami_id):
            return True
        failing = bool(state.in_service) and all(
            state.states.get(i) == "unhealthy" for i in state.in_service
        )
        if not failing:
            unhealthy_since.clear()
            return False
        unhealthy_since[:1] = unhealthy_since[:1] or [time.monotonic()]
        return time.monotonic() - unhealthy_since[0] >= ALL_UNHEALTHY_GIVE_UP_SECONDS

    waited = wait_for(observe, settled_or_hopeless, timeout=timeout, interval=2.0)
    state = waited.last
    problems = fleet_problems(state, ami_id)
    settled = waited.ok and not problems
    if settled:
        detail = f"{len(state.in_service)} InService and healthy: {', '.join(state.in_service)}"
    elif waited.ok:
        detail = (
            f"every target unhealthy for {ALL_UNHEALTHY_GIVE_UP_SECONDS:.0f} s "
            f"(after {waited.seconds:.0f} s): " + "; ".join(problems)
        )
    else:
        detail = f"not settled after {waited.seconds:.0f} s: " + "; ".join(problems)
    check = Check(
        "fleet settled", fleet.deployment.asg_name, settled, detail, waited.seconds, group="fleet"
    )
    return check, fleet.instances(state.in_service)
