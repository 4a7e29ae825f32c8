"""verify's pure parts: expected version, deploy outputs, settling, SSH access."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from webfleet.config import load_stack
from webfleet.drivers.packer import ManifestBuild
from webfleet.errors import WebfleetError
from webfleet.fleet import Deployment
from webfleet.paths import ProjectPaths
from webfleet.stages.verify.run import expected_app_version
from webfleet.stages.verify.settle import FleetState, fleet_problems
from webfleet.stages.verify.ssh import ssh_access
from webfleet.traffic import alb_target


def build(version: str | None = "1.0.1", ami: str = "ami-0new") -> ManifestBuild:
    custom = {"app_name": "demo", "git_commit": "abc"}
    if version is not None:
        custom["app_version"] = version
    return ManifestBuild("app", "amazon-ebs", f"us-east-1:{ami}", "run-1", 1, custom)


def test_expected_version_comes_from_the_newest_bake() -> None:
    expected = expected_app_version(build(), "us-east-1", "ami-0new")
    assert expected is not None
    assert (expected.version, expected.ami_id, expected.note) == ("1.0.1", "ami-0new", "")


def test_expected_version_notes_a_deployed_ami_that_is_not_the_newest_bake() -> None:
    expected = expected_app_version(build(), "us-east-1", "ami-0old")
    assert expected is not None and expected.version == "1.0.1"
    assert "ami-0old is not the newest bake's ami-0new" in expected.note


def test_no_manifest_or_no_version_means_unknown() -> None:
    assert expected_app_version(None, "us-east-1", None) is None
    assert expected_app_version(build(version=None), "us-east-1", None) is None


def test_deployment_from_outputs_needs_the_alb_group_and_target_group(tmp_path: Path) -> None:
    outputs = {
        "alb_dns_name": "demo-alb.local",
        "asg_name": "demo-local",
        "target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/demo/1",
        "ami_id": "ami-0new",
        "https_listener_arn": None,
    }
    deployment = Deployment.from_outputs(outputs, tmp_path / "deploy-outputs.json")
    assert deployment.ami_id == "ami-0new" and not deployment.https_listener
    with pytest.raises(WebfleetError, match="lacks asg_name"):
        Deployment.from_outputs({**outputs, "asg_name": None}, tmp_path / "o.json")


def state(**overrides: object) -> FleetState:
    values: dict[str, object] = {
        "desired": 2,
        "in_service": ["i-1", "i-2"],
        "states": {"i-1": "healthy", "i-2": "healthy"},
        "images": {"i-1": "ami-0new", "i-2": "ami-0new"},
        "refresh": "Successful",
    }
    values.update(overrides)
    return FleetState(**values)  # type: ignore[arg-type]


def test_fleet_settled_when_sized_healthy_refreshed_and_on_the_deployed_ami() -> None:
    assert fleet_problems(state(), "ami-0new") == []
    assert fleet_problems(state(in_service=["i-1"], images={"i-1": "ami-0new"}), None) == [
        "1 of 2 instances InService"
    ]
    assert fleet_problems(state(refresh="InProgress"), "ami-0new") == [
        "instance refresh InProgress"
    ]
    assert fleet_problems(state(states={"i-1": "healthy", "i-2": "unhealthy"}), None) == [
        "targets not healthy: i-2 unhealthy"
    ]
    assert fleet_problems(state(images={"i-1": "ami-0old", "i-2": "ami-0new"}), "ami-0new") == [
        "not on the deployed AMI ami-0new: i-1 on ami-0old"
    ]


def test_alb_target_follows_the_stack_listeners(tmp_path: Path) -> None:
    stack = load_stack(ROOT / "webfleet.toml", "local")
    deployment = Deployment("demo-alb.local", "g", "arn:tg", None, False)
    alb = alb_target(stack, deployment)
    assert [(x.protocol, x.port, x.action) for x in alb.listeners] == [("HTTP", 80, "forward")]
    assert (alb.health_check_path, alb.matcher) == ("/healthz", "200")


STACK = """
[app]
name = "demo"
start = "demo --port $PORT"

[image]
{image}

[network]
public_subnets = [{{ cidr = "10.42.1.0/24", zone = "a" }}, {{ cidr = "10.42.2.0/24", zone = "b" }}]

[environments.local]
kind = "local"
{ssh}
"""


def test_ssh_access_uses_the_generated_key_and_says_how_to_get_one(tmp_path: Path) -> None:
    stack_file = tmp_path / "webfleet.toml"
    stack_file.write_text(STACK.format(image="", ssh=""))
    stack = load_stack(stack_file)
    paths = ProjectPaths(tmp_path)
    with pytest.raises(WebfleetError, match="`invoke deploy` makes it"):
        ssh_access(stack, paths, tmp_path / "verify")
    key = paths.ssh_dir("local") / "id_ed25519"
    key.parent.mkdir(parents=True)
    key.write_text("key")
    access = ssh_access(stack, paths, tmp_path / "verify")
    assert (access.private_key, access.user, access.address) == (key, "admin", "private_ip")
    config = access.config_file.read_text()
    assert "User admin" in config and f"IdentityFile {key}" in config
    assert "ProxyCommand" not in config


def test_ssh_access_with_the_stacks_key_pair_needs_its_private_key(tmp_path: Path) -> None:
    stack_file = tmp_path / "webfleet.toml"
    stack_file.write_text(STACK.format(image='key_name = "mine"\nssh_user = "ec2-user"', ssh=""))
    with pytest.raises(WebfleetError, match=r"environments\.local\.ssh\.private_key_file"):
        ssh_access(load_stack(stack_file), ProjectPaths(tmp_path), tmp_path / "verify")
    (tmp_path / "mine.pem").write_text("key")
    stack_file.write_text(
        STACK.format(
            image='key_name = "mine"\nssh_user = "ec2-user"',
            ssh='ssh = { private_key_file = "mine.pem", proxy_command = "ssh -W %h:%p bastion" }',
        )
    )
    access = ssh_access(load_stack(stack_file), ProjectPaths(tmp_path), tmp_path / "verify")
    assert access.private_key == tmp_path / "mine.pem" and access.user == "ec2-user"
    assert "ProxyCommand ssh -W %h:%p bastion" in access.config_file.read_text()
