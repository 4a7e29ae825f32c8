"""Run the testinfra specs (specs/) on instances over SSH, as on AWS.

The specs read what the stack expects (app user, env file, port, ...) from a JSON context file
and reach the instances with the system `ssh` client through an ssh_config webfleet writes:
the key pair's private key, the AMI's login user, no host-key prompts (instances are new each
time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, field
from pathlib import Path

from webfleet.config import EnvironmentStack
from webfleet.errors import WebfleetError
from webfleet.stages.render import InstanceLayout

CONTEXT_ENV = "WEBFLEET_SPEC_CONTEXT"
SSH_CONNECT_TIMEOUT_SECONDS = 10
SSH_ALIVE_INTERVAL_SECONDS = 5
SSH_ALIVE_COUNT = 3
# All specs on all hosts; cloud-init's wait in the specs is bounded at 180 s.
SPECS_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class SpecContext:
    """What the specs expect of every instance of the stack."""

    app_user: str
    service_name: str
    env_file_path: str
    app_port: int
    health_check_path: str
    # The stack's launch template always requires IMDSv2 tokens.
    imds_tokens_required: bool = True
    # app.secrets: env var -> SSM parameter name. Only the names may reach the user data.
    secrets: dict[str, str] = field(default_factory=dict)
    secrets_refs_path: str = ""
    # The deployed ALB's DNS name, which the env file must carry (None: no ALB, e.g. a machine
    # booted straight from the AMI).
    load_balancer_dns_name: str | None = None

    @classmethod
    def of_stack(
        cls, stack: EnvironmentStack, load_balancer_dns_name: str | None = None
    ) -> SpecContext:
        layout = InstanceLayout(stack.app.name)
        return cls(
            app_user=layout.app_user,
            service_name=layout.service_name,
            env_file_path=layout.env_file_path,
            app_port=stack.app.port,
            health_check_path=stack.app.health_check_path,
            secrets=dict(stack.app.secrets),
            secrets_refs_path=layout.secrets_refs_path,
            load_balancer_dns_name=load_balancer_dns_name,
        )


@dataclass(frozen=True)
class SpecResult:
    host: str
    name: str
    outcome: str  # passed, failed, error, skipped
    message: str
    seconds: float = 0.0


@dataclass(frozen=True)
class SpecReport:
    results: tuple[SpecResult, ...]
    junit_xml: Path

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.outcome in ("passed", "skipped") for r in self.results)


def run_instance_specs(
    specs_dir: Path,
    hosts: list[str],
    *,
    ssh_user: str,
    private_key: Path,
    context: SpecContext,
    work_dir: Path,
    proxy_command: str | None = None,
    timeout: float = SPECS_TIMEOUT_SECONDS,
) -> SpecReport:
    """Run every spec in specs_dir on every host (IP addresses, DNS names, or with a
    proxy_command whatever it takes as %h, e.g. instance ids for SSM)."""
    if not hosts:
        raise WebfleetError("no instances to check: is anything deployed and running?")
    work_dir.mkdir(parents=True, exist_ok=True)
    context_file = work_dir / "spec-context.json"
    context_file.write_text(json.dumps(asdict(context), indent=2), encoding="utf-8")
    ssh_config = work_dir / "ssh_config"
    write_ssh_config(ssh_config, ssh_user, private_key, proxy_command)
    junit_xml = work_dir / "instance-specs.xml"
    junit_xml.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "pytest", str(specs_dir),
        "-p", "no:cacheprovider", "-q", "--color=no",
        f"--rootdir={specs_dir}",
        "--hosts=" + ",".join(f"ssh://{host}" for host in hosts),
        f"--ssh-config={ssh_config}",
        # As root: the env file's directory is closed to the login user, as it should be.
        "--sudo",
        f"--junitxml={junit_xml}",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            env={**_clean_environment(), CONTEXT_ENV: str(context_file)},
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise WebfleetError(
            f"the instance specs on {', '.join(hosts)} did not finish within {timeout:.0f} s"
        ) from None
    if not junit_xml.exists():
        raise WebfleetError(
            f"the instance specs did not run (pytest exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr).strip()[-2000:]}"
        )
    return SpecReport(tuple(parse_junit(junit_xml)), junit_xml)


def write_ssh_config(
    path: Path, user: str, private_key: Path, proxy_command: str | None = None
) -> Path:
    """An ssh_config for the instances (used with `ssh -F`), written to path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ssh_config_text(user, private_key, proxy_command), encoding="utf-8")
    return path


def ssh_config_text(user: str, private_key: Path, proxy_command: str | None = None) -> str:
    lines = [
        "Host *",
        f"  User {user}",
        f"  IdentityFile {private_key.absolute()}",
        "  IdentitiesOnly yes",
        # Instances are new on every deploy: their host keys cannot be known in advance.
        "  StrictHostKeyChecking no",
        "  UserKnownHostsFile /dev/null",
        "  LogLevel ERROR",
        "  BatchMode yes",
        f"  ConnectTimeout {SSH_CONNECT_TIMEOUT_SECONDS}",
        # An instance terminated mid-check (Auto Scaling replacing it) sends no reset: without
        # keepalives its session would hang until the specs' whole timeout.
        f"  ServerAliveInterval {SSH_ALIVE_INTERVAL_SECONDS}",
        f"  ServerAliveCountMax {SSH_ALIVE_COUNT}",
    ]
    if proxy_command is not None:
        lines.append(f"  ProxyCommand {proxy_command}")
    return "\n".join([*lines, ""])


def _clean_environment() -> dict[str, str]:
    # The outer pytest (when webfleet runs under one) must not leak its options into this one.
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def parse_junit(path: Path) -> list[SpecResult]:
    """One result per test case: testinfra names them test_x[ssh://host]."""
    results: list[SpecResult] = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        host = name[name.index("[") + 1 : -1] if name.endswith("]") else ""
        host = host.removeprefix("ssh://")
        spec = name.split("[", 1)[0]
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
                message = (element.get("message") or element.text or "").strip()
                break
        seconds = float(case.get("time") or 0.0)
        results.append(SpecResult(host, spec, outcome, message, round(seconds, 3)))
    return results


def ssh_run(
    ssh_config: Path, host: str, command: str, *, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run one command on an instance with the ssh_config verify writes."""
    try:
        return subprocess.run(
            ["ssh", "-F", str(ssh_config), host, command],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise WebfleetError(
            f"ssh {host} {command!r} did not finish within {timeout:.0f} s"
        ) from None
