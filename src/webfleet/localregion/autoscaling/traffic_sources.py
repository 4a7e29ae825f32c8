"""AttachTrafficSources, DetachTrafficSources and DescribeTrafficSources (moto answers them
501): an elbv2 traffic source is a target group, attached with the same registration, health
and draining as AttachLoadBalancerTargetGroups (members.py registers the members once per
target group; a detach deregisters them, and they drain).

States as AWS reports them: Adding while some InService member is not registered yet, Added
once all are, InService once one is healthy in the target group; after a detach, Removing while
a member still drains, then the source is gone (AWS lists Removed briefly; the provider waits
for either). DescribeTrafficSources lists target groups attached through either API, as AWS
does, filtered by TrafficSourceType and paged.
"""

from __future__ import annotations

from typing import Any

from webfleet.localregion.api.patches import moto_patch
from webfleet.localregion.autoscaling import activities, instance_refresh, members
from webfleet.localregion.autoscaling.errors import client_error

ELBV2 = "elbv2"
_REMOVING = "webfleet_removing_traffic_sources"  # on the group: {target group ARN: member ids}


def source_state(backend: Any, group: Any, arn: str) -> str:
    """Adding, Added or InService for an attached target group."""
    member_ids = [
        s.instance.id for s in group.instance_states if s.lifecycle_state == members.IN_SERVICE
    ]
    try:
        target_group = backend.elbv2_backend.target_groups[arn]
    except KeyError:
        return "Adding"
    registered = set(target_group.targets)
    if any(i not in registered for i in member_ids):
        return "Adding"
    health = backend.elbv2_backend.describe_target_health(arn, [{"Id": i} for i in member_ids])
    return "InService" if any(h.status == "healthy" for h in health) else "Added"


def still_removing(backend: Any, group: Any) -> dict[str, str]:
    """Detached target groups whose former members still drain: {ARN: "Removing"}."""
    removing: dict[str, set[str]] = getattr(group, _REMOVING, {})
    found = {}
    for arn, ids in list(removing.items()):
        target_group = backend.elbv2_backend.target_groups.get(arn)
        draining = target_group is not None and any(
            h.status == "draining"
            for h in backend.elbv2_backend.describe_target_health(arn, [{"Id": i} for i in ids])
        )
        if draining:
            found[arn] = "Removing"
        else:
            del removing[arn]
    return found


def _identifiers(response: Any) -> list[str]:
    sources = response._get_param("TrafficSources") or []
    kinds = {str(s.get("Type") or ELBV2) for s in sources}
    if kinds - {ELBV2}:
        raise client_error(
            "ValidationError",
            f"traffic source type {', '.join(sorted(kinds - {ELBV2}))} is not supported by the "
            "local region: use elbv2 (target groups)",
        )
    identifiers = [str(s["Identifier"]) for s in sources if s.get("Identifier")]
    if not identifiers:
        raise client_error("ValidationError", "TrafficSources: at least one Identifier is required")
    return identifiers


def _group(response: Any) -> Any:
    return instance_refresh.find_group(
        response.autoscaling_backend, response._get_param("AutoScalingGroupName")
    )


@moto_patch("autoscaling.traffic_sources")
def serve_traffic_sources() -> None:
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult, EmptyResult

    def attach_traffic_sources(self: AutoScalingResponse) -> EmptyResult:
        group = _group(self)
        arns = _identifiers(self)
        for arn in arns:
            if arn not in self.autoscaling_backend.elbv2_backend.target_groups:
                raise client_error("ValidationError", f"Target group not found: {arn}")
        for arn in arns:
            getattr(group, _REMOVING, {}).pop(arn, None)
        self.autoscaling_backend.attach_load_balancer_target_groups(group.name, arns)
        return EmptyResult()

    def detach_traffic_sources(self: AutoScalingResponse) -> EmptyResult:
        group = _group(self)
        arns = [a for a in _identifiers(self) if a in group.target_group_arns]
        ids = [s.instance.id for s in group.instance_states]
        removing = group.__dict__.setdefault(_REMOVING, {})
        for arn in arns:
            removing[arn] = set(ids)
        self.autoscaling_backend.detach_load_balancer_target_groups(group.name, arns)
        return EmptyResult()

    def describe_traffic_sources(self: AutoScalingResponse) -> ActionResult:
        group = _group(self)
        kind = self._get_param("TrafficSourceType")
        states: dict[str, str] = {}
        if kind in (None, "", ELBV2):
            backend = self.autoscaling_backend
            states = {arn: source_state(backend, group, arn) for arn in group.target_group_arns}
            states.update(still_removing(backend, group))
        listed = [
            {"TrafficSource": arn, "Identifier": arn, "Type": ELBV2, "State": state}
            for arn, state in states.items()
        ]
        return ActionResult(activities.paged_result(self, "TrafficSources", listed))

    AutoScalingResponse.attach_traffic_sources = attach_traffic_sources  # type: ignore[attr-defined]
    AutoScalingResponse.detach_traffic_sources = detach_traffic_sources  # type: ignore[attr-defined]
    AutoScalingResponse.describe_traffic_sources = describe_traffic_sources  # type: ignore[attr-defined]
    members.drain_on_scale_in.apply()  # registration once per target group, as AWS
