"""What every instance of the stack must show once it has booted from the baked AMI."""

from __future__ import annotations

import json
from typing import Any

import pytest

IMDS = "http://169.254.169.254/latest"


def test_cloud_init_finished_without_errors(host: Any) -> None:
    # Bounded: a boot that never reaches cloud-final would otherwise hang the check.
    status = host.run("timeout 180 cloud-init status --wait --long")
    assert "status: done" in status.stdout, status.stdout + status.stderr
    result = json.loads(host.file("/run/cloud-init/result.json").content_string)
    assert result["v1"]["errors"] == []


def test_app_user_exists_as_a_system_user(host: Any, expected: dict[str, Any]) -> None:
    user = host.user(expected["app_user"])
    assert user.exists
    assert user.uid < 1000  # a system user: no login, no home of its own to speak of


def test_env_file_is_readable_by_the_app_user_only(host: Any, expected: dict[str, Any]) -> None:
    env_file = host.file(expected["env_file_path"])
    assert env_file.is_file
    assert env_file.user == expected["app_user"]
    assert env_file.group == expected["app_user"]
    assert env_file.mode == 0o600


def test_app_service_is_enabled_and_running(host: Any, expected: dict[str, Any]) -> None:
    service = host.service(expected["service_name"])
    assert service.is_enabled
    assert service.is_running


def test_app_listens_on_its_port(host: Any, expected: dict[str, Any]) -> None:
    assert host.socket(f"tcp://0.0.0.0:{expected['app_port']}").is_listening


def test_app_answers_its_health_check(host: Any, expected: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{expected['app_port']}{expected['health_check_path']}"
    code = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {url}")
    assert code == "200"


def test_metadata_v1_is_refused_when_tokens_are_required(
    host: Any, expected: dict[str, Any]
) -> None:
    if not expected["imds_tokens_required"]:
        pytest.skip("the launch template does not require IMDSv2 tokens")
    v1 = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {IMDS}/meta-data/instance-id")
    assert v1 == "401"
    token = host.check_output(
        f"curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' {IMDS}/api/token"
    )
    v2 = host.check_output(
        f"curl -s -H 'X-aws-ec2-metadata-token: {token}' {IMDS}/meta-data/instance-id"
    )
    assert v2.startswith("i-")
