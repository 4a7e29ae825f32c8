"""What the Terraform driver reads from a state file (the destroy stage asks it whether the ALB
has deletion protection): the attributes of a resource by its address."""

from __future__ import annotations

import json
from pathlib import Path

from webfleet.drivers.terraform import Terraform, Workspace


def terraform_with_state(tmp_path: Path, resources: list[dict[str, object]]) -> Terraform:
    state = tmp_path / "terraform.tfstate"
    state.write_text(json.dumps({"version": 4, "resources": resources}))
    workspace = Workspace(tmp_path, tmp_path / "data", state, tmp_path / "rc", {}, tmp_path)
    return Terraform(workspace, lambda _event: None)


def test_attributes_are_found_by_module_type_and_name(tmp_path: Path) -> None:
    terraform = terraform_with_state(
        tmp_path,
        [
            {"module": "module.alb", "mode": "data", "type": "aws_lb", "name": "this",
             "instances": [{"attributes": {"name": "a data source"}}]},
            {"module": "module.alb", "mode": "managed", "type": "aws_lb", "name": "this",
             "instances": [{"attributes": {"enable_deletion_protection": True}}]},
            {"mode": "managed", "type": "aws_key_pair", "name": "webfleet",
             "instances": [{"attributes": {"key_name": "demo"}}]},
        ],
    )  # fmt: skip
    assert terraform.state_attributes("module.alb.aws_lb.this") == {
        "enable_deletion_protection": True
    }
    assert terraform.state_attributes("aws_key_pair.webfleet") == {"key_name": "demo"}
    assert terraform.state_attributes("module.asg.aws_lb.this") is None
    assert terraform.has_state()


def test_a_missing_or_destroyed_state_has_nothing(tmp_path: Path) -> None:
    destroyed = terraform_with_state(tmp_path, [])
    assert not destroyed.has_state()
    assert destroyed.state_attributes("module.alb.aws_lb.this") is None
    destroyed.workspace.state_path.unlink()
    assert not destroyed.has_state()
