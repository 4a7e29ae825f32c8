"""What every instance of the stack must show once it has booted from the baked AMI."""

from __future__ import annotations

import json
import re
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


def test_env_file_names_the_load_balancer(host: Any, expected: dict[str, Any]) -> None:
    dns_name = expected["load_balancer_dns_name"]
    if dns_name is None:
        pytest.skip("no load balancer in front of this instance")
    # Root's to read (mode 0600, the app's user): the login user reads it with sudo.
    content = host.check_output("sudo cat %s", expected["env_file_path"])
    # Only these lines are shown: the file may hold settings that are not for a report.
    named = [line for line in content.splitlines() if line.startswith(("APP_URL=", "APP_LOAD"))]
    assert f"APP_LOAD_BALANCER_DNS_NAME={dns_name}" in named, named
    assert any(re.fullmatch(rf"APP_URL=https?://{re.escape(dns_name)}(:\d+)?", n) for n in named), (
        named
    )


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


def _user_data(host: Any) -> str:
    """The instance's user data as EC2 serves it (IMDSv2), which anyone on the instance can read."""
    token = host.check_output(
        f"curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' {IMDS}/api/token"
    )
    result = host.run(f"curl -sf -H 'X-aws-ec2-metadata-token: {token}' {IMDS}/user-data")
    assert result.rc == 0, f"no user data from the metadata service: {result.stderr}"
    return str(result.stdout)


# NAME=value (env files, shell) or NAME: value (YAML), with optional indentation and `export`.
_ASSIGNMENT = re.compile(r"^\s*(?:-\s+)?(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|:\s)\s*(.*)$")


def test_user_data_holds_no_secret_values(host: Any, expected: dict[str, Any]) -> None:
    """app.secrets names SSM parameters: the user data may carry those names, never a value.

    Every assignment of a variable named in app.secrets must give exactly its parameter's name
    (the references file the instance resolves at boot), and each reference must be there.
    """
    secrets: dict[str, str] = expected["secrets"]
    if not secrets:
        pytest.skip("the stack has no app.secrets")
    user_data = _user_data(host)
    assignments: dict[str, list[str]] = {}
    for line in user_data.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match.group(1) in secrets:
            value = match.group(2).strip().strip("'\"")
            assignments.setdefault(match.group(1), []).append(value)
    leaked = {
        name: [value for value in values if value != secrets[name]]
        for name, values in assignments.items()
    }
    leaked = {name: values for name, values in leaked.items() if values}
    # Name the variables only: printing the values would leak them into the report.
    assert not leaked, (
        f"user data sets {', '.join(sorted(leaked))} to something else than its SSM parameter name"
    )
    missing = sorted(name for name in secrets if secrets[name] not in assignments.get(name, []))
    assert not missing, (
        f"user data has no reference for {', '.join(missing)} "
        f"(expected NAME=/parameter lines for {expected['secrets_refs_path']})"
    )
