"""webfleet/stack_vars.py: the SSH key pair variables for terraform/stack."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT
from webfleet.config import load_stack
from webfleet.stages.deploy.stack_vars import terraform_variables

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE demo-local-webfleet"


def test_generated_key_is_passed_when_the_stack_names_no_key_pair() -> None:
    stack = load_stack(ROOT / "webfleet.toml", "local")
    variables = terraform_variables(stack, "#cloud-config\n", None, KEY)
    assert variables["key_name"] is None
    assert variables["ssh_public_key"] == KEY
    assert variables["ssh_ingress_cidrs"] == []


def test_the_stacks_key_pair_wins_over_the_generated_key(tmp_path: Path) -> None:
    text = (ROOT / "webfleet.toml").read_text().replace("[image]\n", '[image]\nkey_name = "ops"\n')
    stack_file = tmp_path / "webfleet.toml"
    stack_file.write_text(text)
    variables = terraform_variables(load_stack(stack_file, "local"), "", None, KEY)
    assert variables["key_name"] == "ops"
    assert variables["ssh_public_key"] is None
