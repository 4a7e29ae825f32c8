"""Which planned creates are adopted: pure logic over Terraform's JSON plan (no cloud needed)."""

from __future__ import annotations

from typing import Any

from webfleet.stages.deploy.adopt import Found, is_ours, planned_creates

OURS = {"App": "demo", "Environment": "local", "ManagedBy": "webfleet"}


def _change(address: str, kind: str, actions: list[str], after: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": address,
        "mode": "managed",
        "type": kind,
        "change": {"actions": actions, "after": after},
    }


def test_only_plain_creates_of_managed_resources_are_candidates() -> None:
    plan = {
        "resource_changes": [
            _change("aws_lb.new", "aws_lb", ["create"], {"name": "a"}),
            _change("aws_lb.replaced", "aws_lb", ["delete", "create"], {"name": "b"}),
            _change("aws_lb.kept", "aws_lb", ["no-op"], {"name": "c"}),
            {**_change("data.aws_ami.x", "aws_ami", ["read"], {}), "mode": "data"},
        ]
    }
    assert [create.address for create in planned_creates(plan)] == ["aws_lb.new"]


def test_a_resource_with_this_stacks_tags_is_ours() -> None:
    after = {"tags_all": {**OURS, "Project": "demo"}}
    assert is_ours(Found("arn:1", {**OURS, "Project": "demo"}), after)


def test_a_resource_of_another_environment_or_untagged_is_left_alone() -> None:
    after = {"tags_all": OURS}
    assert not is_ours(Found("arn:1", {**OURS, "Environment": "staging"}), after)
    assert not is_ours(Found("arn:1", {}), after)


def test_auto_scaling_group_tags_come_from_its_tag_blocks() -> None:
    after = {"tag": [{"key": k, "value": v, "propagate_at_launch": True} for k, v in OURS.items()]}
    assert is_ours(Found("web", OURS), after)
    assert not is_ours(Found("web", {"ManagedBy": "someone-else"}), after)


def test_listeners_and_rules_belong_to_the_balancer_they_were_found_under() -> None:
    assert is_ours(Found("arn:listener", None), {})
