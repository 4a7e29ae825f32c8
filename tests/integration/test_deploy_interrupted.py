"""An interrupted `invoke deploy` (Ctrl-C, or webfleet killed outright together with the local
region's API daemon, then `local.up`) converges when re-run.

Runs the real `invoke` command line against a local region of the test's own; interrupts it
while Terraform is creating the load balancer; re-runs; then counts what exists through boto3.
Where the interrupt lands decides whether the load balancer is recorded; the adoption test makes
the unlucky case (created in the cloud, missing from the state) happen every time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mypy_boto3_ec2.type_defs import FilterTypeDef

from tests.conftest import ROOT, Sandbox
from webfleet.localregion.host.procfs import is_alive
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.processes import wait_until
from webfleet.paths import BUILD_DIR_ENV
from webfleet.stages.deploy import apply as deploy
from webfleet.targets import region_settings

pytestmark = [pytest.mark.integration, pytest.mark.runtime_minutes(7.5)]

INVOKE = str(ROOT / ".venv" / "bin" / "invoke")


def _environment(sandbox: Sandbox) -> dict[str, str]:
    build_root = sandbox.paths.build_dir("local").parent
    return {**sandbox.environment(), BUILD_DIR_ENV: str(build_root)}


def _invoke(sandbox: Sandbox, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [INVOKE, *args, "--stack", str(sandbox.stack_file)],
        cwd=ROOT,
        env=_environment(sandbox),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_apply_start(log: Path, address: str, timeout: float = 240) -> None:
    """Block until Terraform's apply stream says it started working on `address`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            for line in log.read_text().splitlines():
                event = json.loads(line) if line.startswith("{") else {}
                hook = event.get("hook", {})
                if event.get("type") == "apply_start" and hook["resource"]["addr"] == address:
                    return
        time.sleep(0.2)
    raise AssertionError(f"Terraform never started {address} within {timeout}s ({log})")


def _count_stack_resources(sandbox: Sandbox) -> dict[str, int]:
    target = sandbox.target()
    ec2 = target.ec2()
    ours: list[FilterTypeDef] = [{"Name": "tag:ManagedBy", "Values": ["webfleet"]}]
    return {
        "vpcs": len(ec2.describe_vpcs(Filters=ours)["Vpcs"]),
        "subnets": len(ec2.describe_subnets(Filters=ours)["Subnets"]),
        "security groups": len(ec2.describe_security_groups(Filters=ours)["SecurityGroups"]),
        "load balancers": len(target.elbv2().describe_load_balancers()["LoadBalancers"]),
        "target groups": len(target.elbv2().describe_target_groups()["TargetGroups"]),
        "launch templates": len(ec2.describe_launch_templates()["LaunchTemplates"]),
        "auto scaling groups": len(
            target.autoscaling().describe_auto_scaling_groups()["AutoScalingGroups"]
        ),
    }


EXPECTED = {
    "vpcs": 1,
    "subnets": 2,
    "security groups": 3,  # the ALB's, the instances', the VPC's default (tagged, emptied)
    "load balancers": 1,
    "target groups": 1,
    "launch templates": 1,
    "auto scaling groups": 1,
}


@pytest.fixture
def clean_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    yield sandbox
    destroy = _invoke(sandbox, "destroy")
    output, _ = destroy.communicate(timeout=600)
    assert destroy.returncode == 0, output


def test_interrupted_by_ctrl_c_converges_on_rerun(clean_sandbox: Sandbox) -> None:
    _interrupt_then_converge(clean_sandbox, "ctrl-c")


def test_deploy_killed_with_the_region_daemon_converges_after_local_up(sandbox: Sandbox) -> None:
    # webfleet and the local region's API daemon killed at once, while Terraform (in its own
    # session, so it lives on) creates the load balancer: its calls are refused until
    # `local.up` starts a daemon that restores the records. Leaves the converged stack
    # deployed: the adoption test below starts from it.
    _interrupt_then_converge(sandbox, "kill with the daemon")


def _interrupt_then_converge(sandbox: Sandbox, interruption: str) -> None:
    log = sandbox.paths.build_dir("local") / "logs" / "terraform-apply.jsonl"
    log.unlink(missing_ok=True)
    first = _invoke(sandbox, "deploy")
    _wait_for_apply_start(log, "module.alb.aws_lb.this")
    if interruption == "ctrl-c":
        first.send_signal(signal.SIGINT)
        output, _ = first.communicate(timeout=300)
        assert first.returncode != 0
        assert "interrupted" in output and "re-run" in output, output
    else:
        region = region_settings(sandbox.stack())
        killed = daemon.status(region).pid
        assert killed is not None
        os.kill(first.pid, signal.SIGKILL)
        os.kill(killed, signal.SIGKILL)
        first.communicate(timeout=60)
        assert wait_until(lambda: not is_alive(killed), 10)
        up = _invoke(sandbox, "local.up")
        output, _ = up.communicate(timeout=300)
        assert up.returncode == 0, output

    second = _invoke(sandbox, "deploy")
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    assert "ALB DNS name" in output
    assert _count_stack_resources(sandbox) == EXPECTED

    third = _invoke(sandbox, "deploy", "--json")
    output, _ = third.communicate(timeout=300)
    assert third.returncode == 0, output
    assert json.loads(output[output.index("{") :])["changes"] == {
        "add": 0,
        "change": 0,
        "destroy": 0,
    }


# Resources with unique names or keys: each fails the next apply if left out of the state.
LOST_FROM_STATE = [
    "module.alb.aws_lb.this",
    "module.alb.aws_lb_listener.http",
    'module.alb.aws_lb_listener_rule.this["10"]',
    'module.alb.aws_lb_listener_rule.this["20"]',
    "module.alb.aws_lb_target_group.this",
    "module.asg.aws_launch_template.this",
    "aws_key_pair.webfleet[0]",
]


def _forget(sandbox: Sandbox, addresses: list[str]) -> None:
    """What an apply cut off mid-create leaves: the resources exist, the state lacks them."""
    stack = sandbox.stack()
    workspace = deploy.workspace(sandbox.paths, stack, sandbox.target())
    completed = subprocess.run(
        ["terraform", "state", "rm", *addresses],
        cwd=workspace.config_dir,
        env={
            **os.environ,
            "TF_DATA_DIR": str(workspace.data_dir),
            "TF_CLI_CONFIG_FILE": str(workspace.cli_config),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_resources_missing_from_state_are_adopted(clean_sandbox: Sandbox) -> None:
    sandbox = clean_sandbox
    # After the killed-deploy test this changes nothing; run alone, it deploys from nothing.
    first = _invoke(sandbox, "deploy")
    output, _ = first.communicate(timeout=600)
    assert first.returncode == 0, output
    _forget(sandbox, LOST_FROM_STATE)

    second = _invoke(sandbox, "deploy")
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    for address in LOST_FROM_STATE:
        assert f"adopting {address}" in output, output
    assert _count_stack_resources(sandbox) == EXPECTED

    third = _invoke(sandbox, "deploy", "--json")
    output, _ = third.communicate(timeout=300)
    assert third.returncode == 0, output
    assert json.loads(output[output.index("{") :])["changes"] == {
        "add": 0,
        "change": 0,
        "destroy": 0,
    }
