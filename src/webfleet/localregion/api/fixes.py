"""Fixes for the places where moto's answers differ from AWS's in ways Terraform notices.

Each fix is small and corrects the API itself, so the Terraform configuration stays the same for
AWS and for the local region (no ignore_changes, no local-only branches):

- ``fix_ami_creation_date``: AMIs from MOTO_AMIS_PATH with a ``creation_date`` crash every EC2
  backend after the first one.
- ``fix_launch_template_tags``: the template's own tags (TagSpecifications of resource type
  launch-template) are copied into the version's LaunchTemplateData, a perpetual diff on
  ``aws_launch_template`` whenever tags (or provider default_tags) are set; every plan then makes
  a new template version, and every apply starts an instance refresh.
- ``fix_launch_template_version_user_data``: CreateLaunchTemplateVersion stores UserData
  unparsed, so any launch from version 2+ (a scale-out, an instance refresh) crashes moto.
- ``fix_security_group_rule_description``: rules that reference a security group come back
  without their description, a perpetual diff on ``aws_vpc_security_group_*_rule``.
- ``fix_load_balancer_default_scheme``: a load balancer created without Scheme (Terraform sends
  it only for internal ones) has no scheme at all, instead of AWS's default internet-facing.
- ``fix_scaling_policy_fields``: target tracking policies come back without ``Enabled`` and with an
  empty ``PredictiveScalingConfiguration``, a perpetual diff on ``aws_autoscaling_policy``.
- ``fix_instance_launch_template_version``: group instances report the template version they
  were launched from (moto reports the current default for all), which a refresh relies on.
- ``fix_capacity_reservation_specification``: groups report AWS's default capacity reservation
  preference; without it an apply changing the template and the group fails in the provider.
- ``add_instance_refresh``: StartInstanceRefresh, DescribeInstanceRefreshes,
  CancelInstanceRefresh and RollbackInstanceRefresh, served by instance_refresh.py.
- ``add_scaling_activities``: DescribeScalingActivities lists the scaling the region did (moto
  always answers an empty list).
- ``drain_leaving_instances``: an instance leaving a group with target groups (scale-in, refresh)
  is deregistered and listed as Terminating until the deregistration delay has passed, then
  terminated; moto terminates at once and keeps the targets registered.
- ``UnhandledErrorMiddleware``: a crash inside moto (or an action it lacks) is answered with a
  clear error that the SDKs do not retry, instead of a bare HTTP 500 that Terraform retries for
  many minutes.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import traceback
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]

_APPLIED: set[str] = set()


def _once(name: str) -> bool:
    """True the first time a fix is applied in this process: patches must not stack."""
    if name in _APPLIED:
        return False
    _APPLIED.add(name)
    return True


def apply_model_fixes() -> None:
    """Patch moto's models and responses (idempotent). Import moto only after MOTO_* is set."""
    fix_ami_creation_date()
    fix_launch_template_tags()
    fix_launch_template_version_user_data()
    fix_security_group_rule_description()
    fix_load_balancer_default_scheme()
    fix_register_pending_targets()
    fix_scaling_policy_fields()
    fix_instance_launch_template_version()
    fix_capacity_reservation_specification()
    add_instance_refresh()
    add_scaling_activities()
    drain_leaving_instances()


# --- EC2: AMIs from MOTO_AMIS_PATH ------------------------------------------------------------


def fix_ami_creation_date() -> None:
    """Let every region's EC2 backend load AMIs that have a ``creation_date``.

    moto parses ``creation_date`` in place in the shared AMI list when the first EC2 backend is
    built; the next backend (another region, or us-east-1 built for a global service) then tries
    to parse the resulting datetime and the request fails with a 500.
    """
    if not _once("ami_creation_date"):
        return
    from moto.core.parse import default_timestamp_parser
    from moto.ec2.models import amis

    def parse_timestamp(value: str | dt.datetime) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        return default_timestamp_parser(value)

    amis.parse_timestamp = parse_timestamp  # type: ignore[attr-defined]


# --- EC2: launch template tags ---------------------------------------------------------------


def fix_launch_template_tags() -> None:
    """Keep CreateLaunchTemplate's own tags out of the template version's data.

    In AWS, the request's TagSpecifications (resource type ``launch-template``) tag the template
    itself; LaunchTemplateData.TagSpecifications are what instances and volumes get at launch.
    moto appends the former to the latter, so DescribeLaunchTemplateVersions returns a
    ``launch-template`` tag specification the configuration never had.
    """
    if not _once("launch_template_tags"):
        return
    from moto.core.responses import ActionResult
    from moto.ec2.responses.launch_templates import LaunchTemplates

    original_create = LaunchTemplates.create_launch_template

    def create_launch_template(self: LaunchTemplates) -> ActionResult:
        # Read before moto's handler, which appends to the parsed parameters.
        requested = self._get_param("LaunchTemplateData", {}) or {}
        data_had_specs = "TagSpecifications" in requested
        result = original_create(self)
        template = self.ec2_backend.get_launch_template_by_name(
            self._get_param("LaunchTemplateName")
        )
        for version in template.versions:
            specs = [
                spec
                for spec in version.data.get("TagSpecifications", [])
                if spec.get("ResourceType") != "launch-template"
            ]
            if specs or data_had_specs:
                version.data["TagSpecifications"] = specs
            else:
                version.data.pop("TagSpecifications", None)
        return result

    LaunchTemplates.create_launch_template = create_launch_template  # type: ignore[method-assign]


def fix_launch_template_version_user_data() -> None:
    """Store a new launch template version's UserData the way the first version's is stored.

    CreateLaunchTemplate decodes LaunchTemplateData.UserData into moto's Base64EncodedString;
    CreateLaunchTemplateVersion keeps the raw text, and moto asserts on it when an Auto Scaling
    group launches from that version, so a group fails to launch after its first user data change.
    """
    if not _once("launch_template_version_user_data"):
        return
    from moto.ec2.models.launch_templates import LaunchTemplate, LaunchTemplateVersion
    from moto.ec2.utils import parse_user_data

    original_create_version = LaunchTemplate.create_version

    def create_version(
        self: LaunchTemplate, data: dict[str, Any], description: str
    ) -> LaunchTemplateVersion:
        if isinstance(data.get("UserData"), str | bytes):
            data["UserData"] = parse_user_data(data["UserData"])
        return original_create_version(self, data, description)

    LaunchTemplate.create_version = create_version  # type: ignore[method-assign]


# --- EC2: security group rule descriptions ----------------------------------------------------


def fix_security_group_rule_description() -> None:
    """Report the description of a rule that references a security group.

    moto keeps such a rule's description in its source group entry but reads descriptions only
    from the CIDR entry, so DescribeSecurityGroupRules omits it.
    """
    if not _once("security_group_rule_description"):
        return
    from moto.ec2.models.security_groups import SecurityGroupRule

    def description(self: SecurityGroupRule) -> str | None:
        text: str | None = self.ip_range.get("Description") or self.source_group.get("Description")
        return text

    SecurityGroupRule.description = property(description)  # type: ignore[assignment,method-assign]


# --- ELBv2: load balancer scheme ---------------------------------------------------------------


def fix_load_balancer_default_scheme() -> None:
    """Give a load balancer created without Scheme AWS's default, ``internet-facing``.

    The provider sends Scheme only for internal load balancers; moto's handler passes the missing
    parameter on as None, over the model's own default, so the ALB has no scheme (and the local
    region could not tell an internet-facing ALB from an internal one).
    """
    if not _once("load_balancer_default_scheme"):
        return
    from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer

    original_create = ELBv2Backend.create_load_balancer

    def create_load_balancer(self: ELBv2Backend, *args: Any, **kwargs: Any) -> FakeLoadBalancer:
        if kwargs.get("scheme") is None and len(args) < 4:
            kwargs["scheme"] = "internet-facing"
        return original_create(self, *args, **kwargs)

    ELBv2Backend.create_load_balancer = create_load_balancer  # type: ignore[method-assign]


# --- Auto Scaling: scaling policies -----------------------------------------------------------


def fix_register_pending_targets() -> None:
    """Let a pending instance be registered in a target group, as ELB does.

    moto refuses anything not running; with real machines an Auto Scaling group registers its
    instances while they boot, so CreateAutoScalingGroup failed with InvalidTarget.
    """
    if not _once("register_pending_targets"):
        return
    from moto.elbv2.exceptions import TargetNotRunning
    from moto.elbv2.models import FakeTargetGroup

    def register(self: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
        for target in targets:
            instance = self.ec2_backend.get_instance_by_id(target["Id"])
            if instance is not None and instance.state not in ("pending", "running"):
                raise TargetNotRunning(instance_id=target["Id"])
            self.targets[target["Id"]] = {
                "Id": target["Id"],
                "Port": target.get("Port", self.port),
            }
            self.deregistered_targets.pop(target["Id"], None)

    FakeTargetGroup.register = register  # type: ignore[method-assign]


def fix_scaling_policy_fields() -> None:
    """Answer DescribePolicies with ``Enabled`` and without an empty predictive configuration.

    moto drops PutScalingPolicy's ``Enabled`` (AWS default: true), so the provider reads
    ``enabled = false``; and it stores a missing PredictiveScalingConfiguration as ``{}``, which
    is serialized as an empty element that the provider reads as a configured block. Both show
    up as a diff on every plan.
    """
    if not _once("scaling_policy_fields"):
        return
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


# --- Auto Scaling: capacity reservation preference ---------------------------------------------


def fix_capacity_reservation_specification() -> None:
    """Answer DescribeAutoScalingGroups with the group's CapacityReservationSpecification.

    moto neither stores nor returns it. The provider (5.100) then records an empty preference,
    and every apply that changes the launch template and the group together fails with
    "Provider produced inconsistent final plan" (was "", now null). AWS reports ``default`` for
    a group created without one, and what was set otherwise.
    """
    if not _once("capacity_reservation_specification"):
        return
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


# --- Auto Scaling: which launch template version an instance runs ------------------------------


def fix_instance_launch_template_version() -> None:
    """Report the launch template version each group instance was launched from.

    moto reports the template's current default version for every instance, so after a new
    version nothing shows which instances still run the old one (what an instance refresh
    replaces). We stamp the version at launch and report it.
    """
    if not _once("instance_launch_template_version"):
        return
    from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState

    from webfleet.localregion.autoscaling.instance_refresh import template_version

    original_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace_autoscaling_group_instances(
        self: FakeAutoScalingGroup, count_needed: int, propagated_tags: dict[str, str]
    ) -> None:
        before = {id(state) for state in self.instance_states}
        original_replace(self, count_needed, propagated_tags)
        version = template_version(self)
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


def add_instance_refresh() -> None:
    """Serve the instance refresh actions, which moto lacks (see instance_refresh.py).

    Without them moto answers StartInstanceRefresh with a 500, which the provider retries for many
    minutes whenever an ASG update (e.g. a new launch template version) triggers a refresh.
    """
    if not _once("instance_refresh"):
        return
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    from webfleet.localregion.autoscaling import instance_refresh as refreshes

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


def drain_leaving_instances() -> None:
    """Instances leaving a group behind a load balancer drain first (group_members.py)."""
    from webfleet.localregion.autoscaling.members import drain_on_scale_in

    drain_on_scale_in()


def add_scaling_activities() -> None:
    """DescribeScalingActivities answers what the local region's scaling did (scaling.py)."""
    from webfleet.localregion.autoscaling.scaling import serve_scaling_activities

    serve_scaling_activities()


# --- Unhandled errors: fail fast instead of a retried 500 --------------------------------------

# The SDKs retry HTTP 500/502/503/504 (the provider for many minutes); 501 is not retried.
UNHANDLED_ERROR_STATUS: Final = "501 Not Implemented"


def _credential_scope_service(environ: WSGIEnviron) -> str:
    """The service named in the SigV4 credential scope (``.../region/SERVICE/aws4_request``)."""
    auth: str = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return ""
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[3] if len(scope) >= 5 else ""


def _request_action(environ: WSGIEnviron, body: bytes) -> str:
    """The API action: X-Amz-Target for JSON protocols, else the Action form/query parameter."""
    target: str = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    from urllib.parse import parse_qs

    query: str = environ.get("QUERY_STRING", "")
    for source in (body.decode("utf-8", "replace"), query):
        action = parse_qs(source).get("Action")
        if action:
            return action[0]
    return ""


def error_response_body(environ: WSGIEnviron, code: str, message: str) -> tuple[str, bytes]:
    """An AWS error document in the request's protocol: (content type, body)."""
    request_id = str(uuid.uuid4())
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in environ.get("CONTENT_TYPE", ""):
        document = {"__type": code, "message": message}
        return "application/x-amz-json-1.1", json.dumps(document).encode()
    code_xml, message_xml = escape(code), escape(message)
    if _credential_scope_service(environ) == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code_xml}</Code><Message>{message_xml}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    else:
        xml = (
            f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code_xml}</Code>"
            f"<Message>{message_xml}</Message></Error><RequestId>{request_id}</RequestId>"
            f"</ErrorResponse>"
        )
    return "text/xml", xml.encode()


class UnhandledErrorMiddleware:
    """Turn an exception escaping moto into a clear error response that clients do not retry.

    moto raises NotImplementedError for actions it lacks and lets its own bugs propagate; the
    server then answers a bare HTTP 500, which the AWS SDKs treat as transient: Terraform retries
    each such call for many minutes before it reports anything. A deterministic local failure is
    better reported at once, with the action and the exception in the message.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        body = self._buffer_body(environ)
        try:
            return self.app(environ, start_response)
        except Exception as error:  # anything moto did not handle
            service = _credential_scope_service(environ) or "unknown service"
            action = _request_action(environ, body) or "unknown action"
            log.error("local region: %s %s failed:\n%s", service, action, traceback.format_exc())
            if isinstance(error, NotImplementedError):
                code = "NotImplemented"
                message = f"The local region does not implement {service}:{action} ({error})"
            else:
                code = "LocalRegionInternalError"
                message = (
                    f"The local region failed on {service}:{action}: "
                    f"{type(error).__name__}: {error}"
                )
            content_type, payload = error_response_body(environ, code, message)
            start_response(
                UNHANDLED_ERROR_STATUS,
                [("Content-Type", content_type), ("Content-Length", str(len(payload)))],
            )
            return [payload]

    @staticmethod
    def _buffer_body(environ: WSGIEnviron) -> bytes:
        """Read the request body once and hand the inner app an identical stream."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        body: bytes = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        return body
