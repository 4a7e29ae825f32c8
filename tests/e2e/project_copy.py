"""A copy of the checkout for e2e tests that change the app, the real CLI run against it, and
what its documents and the deployed group say.

WEBFLEET_PROJECT_DIR points the CLI at the copy, so a test can break or bump the app without
touching the checkout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Sandbox
from webfleet.localregion.runtime.settings import STATE_DIR_ENV
from webfleet.paths import BUILD_DIR_ENV, PROJECT_DIR_ENV, ProjectPaths
from webfleet.stages.deploy.outputs import read_deployment
from webfleet.stages.render import LOAD_BALANCER_DNS_NAME_PLACEHOLDER

SAMPLE_APP = Path("examples") / "sample"
PROJECT_PARTS = (str(SAMPLE_APP), "packer", "templates", "user_data", "terraform", "specs")
# bake (~1-2 min) + deploy (~2 min) + rollout or verify with failover (boots, health checks).
PIPELINE_TIMEOUT_SECONDS = 1800


def use_test_clocks(stack_file: Path, grace_period: int) -> None:
    """Shorter clocks than the example stack's (tests/integration/test_deploy.py checks those as
    applied): health checks every 5 s (AWS's least), a 5 s drain, a 10 s warmup, and the given
    grace period. Every wait then scales down; the behaviour is the same."""
    text = stack_file.read_text()
    for old, new in {
        "interval = 10\n": "interval = 5\n",
        "timeout = 5\n": "timeout = 3\n",
        "deregistration_delay = 10\n": "deregistration_delay = 5\n",
        "instance_warmup = 60\n": "instance_warmup = 10\n",
        "health_check_grace_period = 120\n": f"health_check_grace_period = {grace_period}\n",
    }.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    stack_file.write_text(text)


def break_health_check_on_the_fleet(project: ProjectPaths) -> None:
    """Makes the sample app answer its health check with 500 on the fleet only.

    The bake's smoke check starts the app on the builder with the rendered env file, whose
    load balancer name is still the placeholder; the fleet's instances get the ALB's real name
    at boot. So this app bakes, and fails where an app that needs something only the fleet has
    (a database, a secret, its own URL) fails: behind the ALB.
    """
    wsgi = project.root / SAMPLE_APP / "src" / "webfleet_app" / "wsgi.py"
    healthy = 'return _text("200 OK", "ok")'
    assert healthy in wsgi.read_text()
    served_name = 'os.environ.get("APP_LOAD_BALANCER_DNS_NAME")'
    on_the_builder = f'{served_name} == "{LOAD_BALANCER_DNS_NAME_PLACEHOLDER}"'
    wsgi.write_text(
        wsgi.read_text().replace(
            healthy,
            f'return _text("200 OK", "ok") if {on_the_builder} else _text("500 Broken", "broken")',
        )
    )


def copy_project(sandbox: Sandbox, root: Path) -> ProjectPaths:
    for part in PROJECT_PARTS:
        shutil.copytree(
            ROOT / part,
            root / part,
            ignore=shutil.ignore_patterns(".terraform", "*.egg-info", "__pycache__"),
        )
    (root / ".venv").symlink_to(ROOT / ".venv")  # terraform.rc: the provider mirror
    # The stack's app.source: the copy's app, which the tests change.
    text = sandbox.stack_file.read_text()
    checkout_app = f'source = "{ROOT / SAMPLE_APP}"'
    assert checkout_app in text
    sandbox.stack_file.write_text(text.replace(checkout_app, f'source = "{root / SAMPLE_APP}"'))
    return ProjectPaths(root, build_root=sandbox.paths.build_root)


def invoke(
    sandbox: Sandbox, project: ProjectPaths, *args: str, timeout: float = PIPELINE_TIMEOUT_SECONDS
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the real CLI against the sandbox and the project copy; its --json document."""
    command = [str(ROOT / ".venv" / "bin" / "invoke"), *args, "--stack", str(sandbox.stack_file)]
    env = {
        **sandbox.environment(),
        STATE_DIR_ENV: str(sandbox.region_state),
        BUILD_DIR_ENV: str(sandbox.paths.build_root),
        PROJECT_DIR_ENV: str(project.root),
    }
    result, document = run_json(command, ROOT, env, timeout)
    if document is None:
        pytest.fail(f"no JSON from invoke {args[0]} (exit {result.returncode}):\n{result.stderr}")
    return result, document


def run_json(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """Run a webfleet command with --json; its result and document (None if it printed none)."""
    result = subprocess.run(
        [*command, "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        document: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        return result, None
    return result, document


def failed(document: dict[str, Any]) -> list[str]:
    """Each failed check of a pipeline or verify document: name [target]: detail. A run that
    failed before any check (a bake or deploy error) has none: its stderr says why."""
    return [
        f"{c['name']} [{c['target']}]: {c['detail']}"
        for c in document.get("checks", [])
        if c["outcome"] == "failed"
    ]


def group(sandbox: Sandbox, project: ProjectPaths) -> dict[str, Any]:
    """The deployed Auto Scaling Group as the API describes it, with its InService instances
    (replaced ones are listed as Terminating while they drain)."""
    name = read_deployment(project, "local").asg_name
    autoscaling = sandbox.target().autoscaling()
    (described,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    in_service = [i for i in described["Instances"] if i["LifecycleState"] == "InService"]
    return {**described, "Instances": in_service}
