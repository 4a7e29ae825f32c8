"""Adopt resources that an interrupted apply created but never recorded in the state.

Terraform cancels in-flight API calls on Ctrl-C, and a killed Terraform saves nothing: a create
call the cloud completed can then be missing from the state. For resources with unique names the
next apply fails ("ELBv2 Load Balancer (…) already exists" — on AWS as in the local region), and
for listeners and rules on a port or priority already taken. Before applying, every planned create
of such a resource is looked up by what makes it unique; one that exists and carries this stack's
tags (App, Environment, ManagedBy) is imported, so the re-run converges instead of failing. A
resource without those tags is someone else's and is left alone: Terraform's error then names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from webfleet.targets import CloudTarget

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef

# The tags webfleet puts on everything; a found resource is ours only if these match the plan's.
OWNER_TAGS = ("App", "Environment", "ManagedBy")


@dataclass(frozen=True)
class Found:
    """An existing resource: the id `terraform import` takes, and its tags (None: has none)."""

    import_id: str
    tags: Mapping[str, str] | None


@dataclass(frozen=True)
class PlannedCreate:
    address: str
    resource_type: str
    after: Mapping[str, Any]


@dataclass(frozen=True)
class Adoption:
    address: str
    import_id: str


T = TypeVar("T")
Finder = Callable[[CloudTarget, Mapping[str, Any]], Found | None]


def planned_creates(plan: Mapping[str, Any]) -> list[PlannedCreate]:
    """The resources `terraform show -json <plan>` says will be created (replacements excluded)."""
    creates = []
    for change in plan.get("resource_changes", []):
        if change.get("mode") != "managed" or change["change"]["actions"] != ["create"]:
            continue
        after = change["change"].get("after") or {}
        creates.append(PlannedCreate(change["address"], change["type"], after))
    return creates


def find_orphans(target: CloudTarget, plan: Mapping[str, Any]) -> list[Adoption]:
    """Planned creates that already exist in the cloud with this stack's tags."""
    adoptions = []
    for create in planned_creates(plan):
        finder = FINDERS.get(create.resource_type)
        if finder is None:
            continue
        found = finder(target, create.after)
        if found is not None and is_ours(found, create.after):
            adoptions.append(Adoption(create.address, found.import_id))
    return adoptions


def is_ours(found: Found, after: Mapping[str, Any]) -> bool:
    if found.tags is None:
        # Listeners and rules: found under a load balancer or listener already in the state.
        return True
    wanted = _planned_tags(after)
    return all(key in wanted and found.tags.get(key) == wanted[key] for key in OWNER_TAGS)


def _planned_tags(after: Mapping[str, Any]) -> dict[str, str]:
    """The tags a planned resource will carry: tags_all, or an ASG's `tag` blocks."""
    if after.get("tags_all"):
        return dict(after["tags_all"])
    if after.get("tag"):
        return {block["key"]: block["value"] for block in after["tag"]}
    return dict(after.get("tags") or {})


def _tag_dict(tags: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    """Tags as EC2, ELBv2, IAM and Auto Scaling list them (Key/Value pairs), as a dict."""
    return {str(tag["Key"]): str(tag["Value"]) for tag in tags or []}


def _not_found(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return "NotFound" in code or code in {"NoSuchEntity", "ValidationError"}


def _elbv2_tags(target: CloudTarget, arn: str) -> dict[str, str]:
    described = target.elbv2().describe_tags(ResourceArns=[arn])["TagDescriptions"]
    return _tag_dict(described[0]["Tags"] if described else [])


def _if_exists(call: Callable[[], T]) -> T | None:
    """The call's answer, or None when the API says the resource does not exist."""
    try:
        return call()
    except ClientError as error:
        if _not_found(error):
            return None
        raise


def _elbv2_named(
    target: CloudTarget, after: Mapping[str, Any], describe: str, kind: str
) -> Found | None:
    """A load balancer or target group by name (describe_load_balancers/_target_groups)."""
    name = after.get("name")
    if not name:
        return None
    operation = getattr(target.elbv2(), describe)
    found = _if_exists(lambda: operation(Names=[name])[f"{kind}s"])
    if not found:
        return None
    arn = str(found[0][f"{kind}Arn"])
    return Found(arn, _elbv2_tags(target, arn))


def _load_balancer(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    return _elbv2_named(target, after, "describe_load_balancers", "LoadBalancer")


def _target_group(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    return _elbv2_named(target, after, "describe_target_groups", "TargetGroup")


def _listener(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    balancer, port = after.get("load_balancer_arn"), after.get("port")
    if not balancer or port is None:
        return None
    listeners = target.elbv2().describe_listeners(LoadBalancerArn=balancer)["Listeners"]
    for listener in listeners:
        if listener["Port"] == int(port):
            return Found(listener["ListenerArn"], None)
    return None


def _listener_rule(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    listener, priority = after.get("listener_arn"), after.get("priority")
    if not listener or priority is None:
        return None
    for rule in target.elbv2().describe_rules(ListenerArn=listener)["Rules"]:
        if rule["Priority"] == str(priority):
            return Found(rule["RuleArn"], None)
    return None


def _security_group(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    name, vpc = after.get("name"), after.get("vpc_id")
    if not name or not vpc:
        return None
    filters: list[FilterTypeDef] = [
        {"Name": "group-name", "Values": [name]},
        {"Name": "vpc-id", "Values": [vpc]},
    ]
    groups = target.ec2().describe_security_groups(Filters=filters)["SecurityGroups"]
    if not groups:
        return None
    return Found(groups[0]["GroupId"], _tag_dict(groups[0].get("Tags")))


def _launch_template(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    name = after.get("name")
    if not name:
        return None
    filters: list[FilterTypeDef] = [{"Name": "launch-template-name", "Values": [name]}]
    found = target.ec2().describe_launch_templates(Filters=filters)["LaunchTemplates"]
    if not found:
        return None
    return Found(found[0]["LaunchTemplateId"], _tag_dict(found[0].get("Tags")))


def _key_pair(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    name = after.get("key_name")
    if not name:
        return None
    filters: list[FilterTypeDef] = [{"Name": "key-name", "Values": [name]}]
    found = target.ec2().describe_key_pairs(Filters=filters)["KeyPairs"]
    if not found:
        return None
    return Found(name, _tag_dict(found[0].get("Tags")))


def _auto_scaling_group(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    name = after.get("name")
    if not name:
        return None
    client = target.autoscaling()
    groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not groups:
        return None
    # The group's own tags are the module's `tag` blocks, not default_tags: compare those.
    return Found(name, _tag_dict(groups[0].get("Tags")))


def _iam_role(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    name = after.get("name")
    if not name:
        return None
    role = _if_exists(lambda: target.iam().get_role(RoleName=name)["Role"])
    if role is None:
        return None
    return Found(name, _tag_dict(role.get("Tags")))


def _instance_profile(target: CloudTarget, after: Mapping[str, Any]) -> Found | None:
    name = after.get("name")
    if not name:
        return None
    iam = target.iam()
    profile = _if_exists(lambda: iam.get_instance_profile(InstanceProfileName=name))
    if profile is None:
        return None
    return Found(name, _tag_dict(profile["InstanceProfile"].get("Tags")))


FINDERS: dict[str, Finder] = {
    "aws_lb": _load_balancer,
    "aws_lb_target_group": _target_group,
    "aws_lb_listener": _listener,
    "aws_lb_listener_rule": _listener_rule,
    "aws_security_group": _security_group,
    "aws_launch_template": _launch_template,
    "aws_key_pair": _key_pair,
    "aws_autoscaling_group": _auto_scaling_group,
    "aws_iam_role": _iam_role,
    "aws_iam_instance_profile": _instance_profile,
}
