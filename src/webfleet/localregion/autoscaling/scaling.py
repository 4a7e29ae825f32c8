"""Target tracking scaling in the local region: metrics from the machines and HAProxy.

Every PERIOD_SECONDS, for each group:
- ASGAverageCPUUtilization: the mean over its InService instances of the CPU time their machine's
  cgroup used in the period, as a percentage of the instance type's vCPUs (t3.micro: 2), as
  EC2 reports it; published as AWS/EC2 CPUUtilization {AutoScalingGroupName}.
- ALBRequestCountPerTarget (for a policy's ResourceLabel): the responses HAProxy's servers of the
  target group gave in the period, per minute, divided by the healthy targets; published as
  AWS/ApplicationELB RequestCountPerTarget {TargetGroup}.
- Each enabled target tracking policy wants ceil(InService * metric / target). The group scales
  out when some policy wanted more than the desired capacity for SCALE_OUT_PERIODS periods in a
  row (no new scale-out while the last one's instances warm up), and in when every policy
  wanted less for SCALE_IN_PERIODS periods and the last activity is SCALE_IN_COOLDOWN_SECONDS
  old; always within min and max. A scale-in drains its instances first (group_members).
- Each launch and termination is a scaling activity naming the policy (activities.py).

Time runs faster than on AWS, which evaluates one-minute datapoints (3 for a scale-out alarm,
15 for scale-in): the same decisions, in seconds instead of minutes, so a rehearsal fits in a
coffee break. No scaling while an instance refresh runs on the group.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from webfleet.localregion.autoscaling import activities
from webfleet.localregion.runtime.periodic import Periodic

log = logging.getLogger(__name__)

PERIOD_SECONDS = 10.0
SCALE_OUT_PERIODS = 2
SCALE_IN_PERIODS = 6
SCALE_IN_COOLDOWN_SECONDS = 30.0
DEFAULT_WARMUP_SECONDS = 30.0
CPU = "ASGAverageCPUUtilization"
REQUESTS = "ALBRequestCountPerTarget"


class RequestCounter(Protocol):
    def requests_served(self, target_group_arn: str) -> int: ...


CpuUsage = Callable[[str], int | None]


@dataclass
class _GroupTracking:
    """What the engine remembers of one group between periods."""

    cpu_usec: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    above: int = 0
    below: int = 0
    last_activity: float = 0.0
    last_scale_out: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    desired: int
    policy: str
    metric: str
    value: float
    target: float


class TargetTracking:
    """The `scaling` component: measures, publishes metrics, and scales groups."""

    name = "scaling"

    def __init__(
        self,
        requests: RequestCounter,
        cpu_usage: CpuUsage,
        period: float = PERIOD_SECONDS,
    ) -> None:
        self._requests = requests
        self._cpu_usage = cpu_usage
        self._period = period
        self._groups: dict[str, _GroupTracking] = {}
        self._ticks = Periodic("target tracking", period, self.tick)

    def start(self) -> None:
        self._ticks.start()

    def stop(self) -> None:
        self._ticks.stop()

    def tick(self) -> None:
        from moto.autoscaling.models import autoscaling_backends

        backend: Any
        for account, region, backend in list(autoscaling_backends.iter_backends()):
            for group in list(backend.autoscaling_groups.values()):
                tracking = self._groups.setdefault(group.arn, _GroupTracking())
                tracking.metrics = self._measure(backend, group, tracking)
                _publish(account, region, group, tracking.metrics)
                self._scale(backend, group, tracking)

    # --- metrics --------------------------------------------------------------------------------

    def _measure(self, backend: Any, group: Any, tracking: _GroupTracking) -> dict[str, float]:
        metrics: dict[str, float] = {}
        in_service = [s.instance for s in group.instance_states
                      if s.lifecycle_state == "InService"]  # fmt: skip
        cpu = self._cpu_percent(in_service, tracking)
        if cpu is not None:
            metrics[CPU] = cpu
        for arn in list(group.target_group_arns):
            per_target = self._requests_per_target(backend, arn, tracking)
            if per_target is not None:
                metrics[f"{REQUESTS}:{arn}"] = per_target
        return metrics

    def _cpu_percent(self, instances: list[Any], tracking: _GroupTracking) -> float | None:
        samples = []
        seen: dict[str, int] = {}
        for instance in instances:
            usage = self._cpu_usage(instance.id)
            if usage is None:
                continue
            seen[instance.id] = usage
            previous = tracking.cpu_usec.get(instance.id)
            if previous is not None and usage >= previous:
                # As EC2's CPUUtilization: of the instance type's vCPUs (a machine may use more
                # of the host than that when it has more cores: capped at 100 %).
                capacity_usec = self._period * 1_000_000 * vcpus(instance.instance_type)
                samples.append(min(100.0, 100.0 * (usage - previous) / capacity_usec))
        tracking.cpu_usec = seen
        return round(sum(samples) / len(samples), 2) if samples else None

    def _requests_per_target(
        self, backend: Any, target_group_arn: str, tracking: _GroupTracking
    ) -> float | None:
        total = self._requests.requests_served(target_group_arn)
        previous = tracking.requests.get(target_group_arn)
        tracking.requests[target_group_arn] = total
        if previous is None:
            return None
        # A reload starts HAProxy's counters from zero.
        served = total - previous if total >= previous else total
        healthy = _healthy_targets(backend, target_group_arn)
        per_minute = served * 60.0 / self._period
        return round(per_minute / max(healthy, 1), 1)

    # --- decisions ------------------------------------------------------------------------------

    def _scale(self, backend: Any, group: Any, tracking: _GroupTracking) -> None:
        policies = _target_tracking_policies(backend, group)
        if not policies or _refresh_active(backend, group):
            tracking.above = tracking.below = 0
            return
        desired = int(group.desired_capacity or 0)
        in_service = sum(1 for s in group.instance_states if s.lifecycle_state == "InService")
        wanted = [d for p in policies if (d := _wanted(p, group, tracking, in_service))]
        if not wanted:
            return
        highest = max(wanted, key=lambda d: d.desired)
        tracking.above = tracking.above + 1 if highest.desired > desired else 0
        all_below = len(wanted) == len(policies) and highest.desired < desired
        tracking.below = tracking.below + 1 if all_below else 0
        now = time.monotonic()
        if tracking.above >= SCALE_OUT_PERIODS and now - tracking.last_scale_out >= _warmup(
            group, policies
        ):
            self._set_capacity(backend, group, tracking, highest, desired)
            tracking.last_scale_out = now
        elif (
            tracking.below >= SCALE_IN_PERIODS
            and now - tracking.last_activity >= SCALE_IN_COOLDOWN_SECONDS
            and not any(_scale_in_disabled(p) for p in policies)
        ):
            self._set_capacity(backend, group, tracking, highest, desired)

    def _set_capacity(
        self, backend: Any, group: Any, tracking: _GroupTracking, decision: Decision, old: int
    ) -> None:
        new = decision.desired
        if new == old:
            return
        log.info(
            "%s: %s %s = %.1f (target %.1f): desired %d → %d",
            group.name, decision.policy, decision.metric, decision.value, decision.target, old, new,
        )  # fmt: skip
        with activities.because(alarm_cause(group, decision, old)):
            backend.set_desired_capacity(group.name, new)
        tracking.above = tracking.below = 0
        tracking.last_activity = time.monotonic()


def _wanted(policy: Any, group: Any, tracking: _GroupTracking, in_service: int) -> Decision | None:
    config = policy.target_tracking_configuration
    spec = getattr(config, "PredefinedMetricSpecification", None) or {}
    metric = spec.get("PredefinedMetricType")
    target = float(getattr(config, "TargetValue", 0) or 0)
    if target <= 0 or in_service == 0:
        return None
    if metric == CPU:
        value = tracking.metrics.get(CPU)
    elif metric == REQUESTS:
        value = _requests_metric(tracking, str(spec.get("ResourceLabel", "")))
    else:
        return None
    if value is None:
        return None
    wanted = math.ceil(in_service * value / target)
    bounded = max(int(group.min_size), min(int(group.max_size), wanted))
    return Decision(bounded, policy.name, metric, value, target)


def _requests_metric(tracking: _GroupTracking, resource_label: str) -> float | None:
    """The metric of the target group a ResourceLabel (app/lb/id/targetgroup/tg/id) names."""
    suffix = resource_label.split("/targetgroup/", 1)[-1]
    for key, value in tracking.metrics.items():
        if key.startswith(f"{REQUESTS}:") and key.endswith(f"targetgroup/{suffix}"):
            return value
    return None


def _target_tracking_policies(backend: Any, group: Any) -> list[Any]:
    return [
        policy
        for policy in list(backend.policies.values())
        if policy.auto_scaling_group_name == group.name
        and policy.policy_type == "TargetTrackingScaling"
        and getattr(policy, "enabled", True)
    ]


def _scale_in_disabled(policy: Any) -> bool:
    return bool(getattr(policy.target_tracking_configuration, "DisableScaleIn", False))


def _warmup(group: Any, policies: list[Any]) -> float:
    for value in (
        *(getattr(p, "estimated_instance_warmup", None) for p in policies),
        getattr(group, "default_instance_warmup", None),
    ):
        if value:
            return float(value)
    return DEFAULT_WARMUP_SECONDS


def _refresh_active(backend: Any, group: Any) -> bool:
    from webfleet.localregion.autoscaling.instance_refresh import instance_refreshes

    return any(run.active for run in instance_refreshes(backend).get(group.arn, []))


def _healthy_targets(backend: Any, target_group_arn: str) -> int:
    target_group = backend.elbv2_backend.target_groups.get(target_group_arn)
    if target_group is None:
        return 0
    try:
        health = backend.elbv2_backend.describe_target_health(target_group_arn, [])
    except Exception:
        return 0
    return sum(1 for status in health if status.status == "healthy")


def _publish(account: str, region: str, group: Any, metrics: dict[str, float]) -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    # No Timestamp: moto stamps the datapoint itself (naive UTC, which its queries compare with).
    data: dict[str, list[dict[str, Any]]] = {"AWS/EC2": [], "AWS/ApplicationELB": []}
    if CPU in metrics:
        data["AWS/EC2"].append(
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group.name}],
                "Value": metrics[CPU],
                "Unit": "Percent",
            }
        )
    for key, value in metrics.items():
        if key.startswith(f"{REQUESTS}:"):
            arn = key.split(":", 1)[1]
            data["AWS/ApplicationELB"].append(
                {
                    "MetricName": "RequestCountPerTarget",
                    "Dimensions": [{"Name": "TargetGroup", "Value": arn.rsplit(":", 1)[-1]}],
                    "Value": value,
                    "Unit": "Count",
                }
            )
    backend = cloudwatch_backends[account][region]
    for namespace, metric_data in data.items():
        if metric_data:
            backend.put_metric_data(namespace, metric_data)


def vcpus(instance_type: str) -> int:
    """The instance type's vCPUs (EC2's table, as moto has it); the host's for an unknown type."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    info = INSTANCE_TYPES.get(instance_type, {}).get("VCpuInfo", {})
    return int(info.get("DefaultVCpus") or os.cpu_count() or 1)


def alarm_cause(group: Any, decision: Decision, old: int) -> str:
    """Why a target tracking policy changed the capacity, as the activity history says."""
    new = decision.desired
    return (
        f"At {activities.stamp()} a monitor alarm TargetTracking-{group.name}-Alarm"
        f"{'High' if new > old else 'Low'} in state ALARM triggered policy {decision.policy} "
        f"({decision.metric} {decision.value:g}, target {decision.target:g}) changing the "
        f"desired capacity from {old} to {new}."
    )
