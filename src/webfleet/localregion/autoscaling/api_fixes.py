"""Fixes to moto's Auto Scaling API where its answers differ from AWS's in ways Terraform notices.

Each fix corrects the API itself, so the Terraform configuration stays the same for AWS and for
the local region. Each is a patch in the registry (api/patches.py), applied by the API app:

- ``fix_scaling_policy_fields``: target tracking policies come back without ``Enabled`` and with an
  empty ``PredictiveScalingConfiguration``, a perpetual diff on ``aws_autoscaling_policy``.
- ``fix_instance_launch_template_version``: group instances report the template version they
  were launched from (moto reports the current default for all), which a refresh relies on.
- ``fix_capacity_reservation_specification``: groups report AWS's default capacity reservation
  preference; without it an apply changing the template and the group fails in the provider.
- ``add_instance_refresh``: StartInstanceRefresh, DescribeInstanceRefreshes,
  CancelInstanceRefresh and RollbackInstanceRefresh, served by instance_refresh.py.
- ``add_missing_actions``: DisableMetricsCollection, DescribeAccountLimits and the
  Describe*Types lists (moto answers them 501).

The package's other patches are next to what they serve: DescribeScalingActivities lists every
launch and termination with its cause (activities.py; moto always answers an empty list); an
instance leaving a group (scale-in, refresh, health replacement, a user's termination) is
deregistered and listed as Terminating until the deregistration delay has passed, then
terminated (members.py; moto terminates at once and keeps the targets registered); launches
spread over the group's subnets (group_health.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webfleet.localregion.api.patches import moto_patch
from webfleet.localregion.autoscaling import instance_refresh as refreshes

# --- scaling policies ---------------------------------------------------------------------------


@moto_patch("autoscaling.scaling_policy_fields")
def fix_scaling_policy_fields() -> None:
    """Answer DescribePolicies with ``Enabled`` and without an empty predictive configuration.

    moto drops PutScalingPolicy's ``Enabled`` (AWS default: true), so the provider reads
    ``enabled = false``; and it stores a missing PredictiveScalingConfiguration as ``{}``, which
    is serialized as an empty element that the provider reads as a configured block. Both show
    up as a diff on every plan.
    """
    from moto.autoscaling.models import FakeScalingPolicy
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    original_init = FakeScalingPolicy.__init__

    def init(self: FakeScalingPolicy, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.enabled = True  # type: ignore[attr-defined]
        if not self.predictive_scaling_configuration:
            self.predictive_scaling_configuration = None  # type: ignore[assignment]

    original_put = AutoScalingResponse.put_scaling_policy

    def put_scaling_policy(self: AutoScalingResponse) -> ActionResult:
        result = original_put(self)
        name = self._get_param("PolicyName")
        policy = self.autoscaling_backend.policies.get(name)
        if policy is not None:
            enabled = self._get_param("Enabled")
            policy.enabled = True if enabled is None else bool(enabled)  # type: ignore[attr-defined]
        return result

    FakeScalingPolicy.__init__ = init  # type: ignore[method-assign]
    AutoScalingResponse.put_scaling_policy = put_scaling_policy  # type: ignore[method-assign]


# --- capacity reservation preference ----------------------------------------------------------


@moto_patch("autoscaling.capacity_reservation_specification")
def fix_capacity_reservation_specification() -> None:
    """Answer DescribeAutoScalingGroups with the group's CapacityReservationSpecification.

    moto neither stores nor returns it. The provider (5.100) then records an empty preference,
    and every apply that changes the launch template and the group together fails with
    "Provider produced inconsistent final plan" (was "", now null). AWS reports ``default`` for
    a group created without one, and what was set otherwise.
    """
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    default = {"CapacityReservationPreference": "default"}

    def specification(self: FakeAutoScalingGroup) -> dict[str, Any]:
        return getattr(self, "_capacity_reservation_specification", None) or default

    def remembering(original: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
        def handler(self: AutoScalingResponse) -> ActionResult:
            result = original(self)
            given = self._get_param("CapacityReservationSpecification")
            group = self.autoscaling_backend.autoscaling_groups.get(
                self._get_param("AutoScalingGroupName")
            )
            if given and group is not None:
                group._capacity_reservation_specification = given  # type: ignore[attr-defined]
            return result

        return handler

    FakeAutoScalingGroup.capacity_reservation_specification = property(specification)  # type: ignore[attr-defined]
    AutoScalingResponse.create_auto_scaling_group = remembering(  # type: ignore[method-assign]
        AutoScalingResponse.create_auto_scaling_group
    )
    AutoScalingResponse.update_auto_scaling_group = remembering(  # type: ignore[method-assign]
        AutoScalingResponse.update_auto_scaling_group
    )


# --- which launch template version an instance runs --------------------------------------------


@moto_patch("autoscaling.instance_launch_template_version")
def fix_instance_launch_template_version() -> None:
    """Report the launch template version each group instance was launched from.

    moto reports the template's current default version for every instance, so after a new
    version nothing shows which instances still run the old one (what an instance refresh
    replaces). We stamp the version at launch and report it.
    """
    from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState

    original_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace_autoscaling_group_instances(
        self: FakeAutoScalingGroup, count_needed: int, propagated_tags: dict[str, str]
    ) -> None:
        before = {id(state) for state in self.instance_states}
        original_replace(self, count_needed, propagated_tags)
        version = refreshes.template_version(self)
        for state in self.instance_states:
            if id(state) not in before:
                state.launch_template_version = version  # type: ignore[attr-defined]

    original_launch_template = InstanceState.launch_template

    def launch_template(self: InstanceState) -> dict[str, Any] | None:
        spec: dict[str, Any] | None = original_launch_template.fget(self)  # type: ignore[attr-defined]
        version = getattr(self, "launch_template_version", None)
        if spec is not None and version is not None:
            spec["Version"] = str(version)
        return spec

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances  # type: ignore[method-assign]
    InstanceState.launch_template = property(launch_template)  # type: ignore[assignment,method-assign]


# --- instance refresh ----------------------------------------------------------------------------


@moto_patch("autoscaling.instance_refresh")
def add_instance_refresh() -> None:
    """Serve the instance refresh actions, which moto lacks (see instance_refresh.py).

    Without them moto answers StartInstanceRefresh with a 500, which the provider retries for many
    minutes whenever an ASG update (e.g. a new launch template version) triggers a refresh.
    """
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    def start(self: AutoScalingResponse) -> ActionResult:
        refresh = refreshes.start_instance_refresh(
            self.autoscaling_backend,
            group_name=self._get_param("AutoScalingGroupName"),
            strategy=self._get_param("Strategy") or "Rolling",
            preferences=self._get_param("Preferences") or {},
            desired_configuration=self._get_param("DesiredConfiguration"),
        )
        return ActionResult({"InstanceRefreshId": refresh.instance_refresh_id})

    def describe(self: AutoScalingResponse) -> ActionResult:
        runs = refreshes.describe_instance_refreshes(
            self.autoscaling_backend,
            group_name=self._get_param("AutoScalingGroupName"),
            refresh_ids=self._get_param("InstanceRefreshIds") or [],
        )
        return ActionResult({"InstanceRefreshes": [run.as_shape() for run in runs]})

    def cancel(self: AutoScalingResponse) -> ActionResult:
        run = refreshes.cancel_instance_refresh(
            self.autoscaling_backend, group_name=self._get_param("AutoScalingGroupName")
        )
        return ActionResult({"InstanceRefreshId": run.instance_refresh_id})

    def rollback(self: AutoScalingResponse) -> ActionResult:
        run = refreshes.rollback_instance_refresh(
            self.autoscaling_backend, group_name=self._get_param("AutoScalingGroupName")
        )
        return ActionResult({"InstanceRefreshId": run.instance_refresh_id})

    AutoScalingResponse.start_instance_refresh = start  # type: ignore[attr-defined]
    AutoScalingResponse.describe_instance_refreshes = describe  # type: ignore[attr-defined]
    AutoScalingResponse.cancel_instance_refresh = cancel  # type: ignore[attr-defined]
    AutoScalingResponse.rollback_instance_refresh = rollback  # type: ignore[attr-defined]


# --- actions moto lacks that Terraform's resources call ---------------------------------------

GROUP_METRICS = (
    "GroupMinSize", "GroupMaxSize", "GroupDesiredCapacity", "GroupInServiceInstances",
    "GroupPendingInstances", "GroupStandbyInstances", "GroupTerminatingInstances",
    "GroupTotalInstances", "GroupInServiceCapacity", "GroupPendingCapacity",
    "GroupStandbyCapacity", "GroupTerminatingCapacity", "GroupTotalCapacity",
    "WarmPoolDesiredCapacity", "WarmPoolWarmedCapacity", "WarmPoolPendingCapacity",
    "WarmPoolTerminatingCapacity", "WarmPoolTotalCapacity", "GroupAndWarmPoolDesiredCapacity",
    "GroupAndWarmPoolTotalCapacity",
)  # fmt: skip
SCALING_PROCESSES = (
    "Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification", "AZRebalance",
    "HealthCheck", "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions",
)  # fmt: skip


@moto_patch("autoscaling.missing_actions")
def add_missing_actions() -> None:
    """DisableMetricsCollection (aws_autoscaling_group when enabled_metrics shrink) and the
    Describe*Types and DescribeAccountLimits lists, answered as AWS answers them."""
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult, EmptyResult

    def disable_metrics_collection(self: AutoScalingResponse) -> EmptyResult:
        name = self._get_param("AutoScalingGroupName")
        group = refreshes.find_group(self.autoscaling_backend, name)
        metrics = self._get_param("Metrics") or []
        group.metrics = [m for m in group.metrics if metrics and m not in metrics]
        return EmptyResult()

    def answer(result: dict[str, Any]) -> Callable[[AutoScalingResponse], ActionResult]:
        return lambda self: ActionResult(result)

    AutoScalingResponse.disable_metrics_collection = disable_metrics_collection  # type: ignore[attr-defined]
    static: dict[str, dict[str, Any]] = {
        "describe_account_limits": {
            "MaxNumberOfAutoScalingGroups": 500,
            "MaxNumberOfLaunchConfigurations": 200,
            "NumberOfAutoScalingGroups": 0,
            "NumberOfLaunchConfigurations": 0,
        },
        "describe_adjustment_types": {
            "AdjustmentTypes": [
                {"AdjustmentType": t}
                for t in ("ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity")
            ]
        },
        "describe_scaling_process_types": {
            "Processes": [{"ProcessName": p} for p in SCALING_PROCESSES]
        },
        "describe_termination_policy_types": {
            "TerminationPolicyTypes": [
                "AllocationStrategy",
                "ClosestToNextInstanceHour",
                "Default",
                "NewestInstance",
                "OldestInstance",
                "OldestLaunchConfiguration",
                "OldestLaunchTemplate",
            ]
        },
        "describe_metric_collection_types": {
            "Metrics": [{"Metric": m} for m in GROUP_METRICS],
            "Granularities": [{"Granularity": "1Minute"}],
        },
        "describe_lifecycle_hook_types": {
            "LifecycleHookTypes": [
                "autoscaling:EC2_INSTANCE_LAUNCHING",
                "autoscaling:EC2_INSTANCE_TERMINATING",
            ]
        },
    }
    for method, result in static.items():
        setattr(AutoScalingResponse, method, answer(result))
