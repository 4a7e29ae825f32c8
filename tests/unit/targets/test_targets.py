"""The targets interface: chosen once by the environment's kind, each with its own endpoint,
credentials and region guards. AWS itself cannot run here: its target is checked offline only
(its environment and its refusal of local-only tasks), never called."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from webfleet.config import EnvironmentStack, load_stack
from webfleet.errors import WebfleetError
from webfleet.localregion.runtime.ports import free_port
from webfleet.localregion.runtime.settings import STATE_DIR_ENV
from webfleet.targets import cloud_target
from webfleet.targets.aws import AwsTarget
from webfleet.targets.local import LOCAL_ACCESS_KEY, LocalRegionTarget


def stack(env_name: str) -> EnvironmentStack:
    return load_stack(ROOT / "webfleet.toml", env_name)


def test_the_environment_kind_picks_the_implementation() -> None:
    assert isinstance(cloud_target(stack("local")), LocalRegionTarget)
    assert isinstance(cloud_target(stack("aws")), AwsTarget)


def test_local_tools_get_the_endpoint_and_fixed_credentials_and_no_outside_aws_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone-elses")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "leaked")
    target = cloud_target(stack("local"))
    environment = target.tool_environment()
    assert environment["AWS_ENDPOINT_URL"] == target.endpoint_url == "http://127.0.0.1:4599"
    assert environment["AWS_ACCESS_KEY_ID"] == LOCAL_ACCESS_KEY
    assert environment["AWS_EC2_METADATA_DISABLED"] == "true"
    assert "AWS_PROFILE" not in environment and "AWS_SESSION_TOKEN" not in environment
    assert target.packer_variables() == {
        "ec2_endpoint": "http://127.0.0.1:4599",
        "ssh_interface": "private_ip",
    }


def test_aws_tools_get_the_profile_and_the_callers_credentials_but_no_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "from-oidc")
    aws = stack("aws")
    target = cloud_target(aws)
    environment = target.tool_environment()
    assert target.endpoint_url is None
    assert "AWS_ENDPOINT_URL" not in environment
    assert environment["AWS_SESSION_TOKEN"] == "from-oidc"
    assert environment["AWS_REGION"] == aws.environment.region
    assert environment.get("AWS_PROFILE") == aws.environment.profile
    assert target.packer_variables() == {}


def test_typed_clients_call_the_targets_endpoint() -> None:
    target = cloud_target(stack("local"))
    assert target.ec2().meta.endpoint_url == "http://127.0.0.1:4599"
    assert target.autoscaling().meta.region_name == "us-east-1"


def test_local_only_tasks_are_refused_on_aws_naming_the_environment() -> None:
    with pytest.raises(
        WebfleetError,
        match="environment aws is kind 'aws', and `invoke load` needs the local region",
    ):
        cloud_target(stack("aws")).local_region("`invoke load`")
    assert cloud_target(stack("local")).local_region("`invoke load`").port == 4599


def test_a_stopped_local_region_is_an_error_that_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    text = (
        (ROOT / "webfleet.toml").read_text().replace("api_port = 4599", f"api_port = {free_port()}")
    )
    stack_file = tmp_path / "webfleet.toml"
    stack_file.write_text(text)
    target = cloud_target(load_stack(stack_file, "local"))
    with pytest.raises(
        WebfleetError, match="is not running, so nothing is there: run `invoke deploy`"
    ):
        target.require_running("nothing is there")
    cloud_target(stack("aws")).require_running("nothing is there")  # AWS is always there


def test_the_aws_builder_admits_ssh_from_this_hosts_public_ip_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # AWS's checkip service cannot be reached from here: urlopen is replaced, and only here.
    asked: list[str] = []

    def checkip(url: str, timeout: float) -> io.BytesIO:
        asked.append(url)
        return io.BytesIO(b"203.0.113.7\n")

    monkeypatch.setattr(urllib.request, "urlopen", checkip)
    assert cloud_target(stack("aws")).build_host_cidrs() == ["203.0.113.7/32"]
    assert asked == ["https://checkip.amazonaws.com"]


def test_no_public_ip_says_which_setting_to_give(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(url: str, timeout: float) -> io.BytesIO:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(WebfleetError, match=r"environments\.aws\.bake_ingress_cidrs"):
        cloud_target(stack("aws")).build_host_cidrs()
