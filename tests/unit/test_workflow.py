"""The CI image pipeline workflow: valid for GitHub, and its steps call webfleet as it is.

The workflow only runs on GitHub against AWS; what can be checked here is checked: the file
against GitHub's workflow schema (check-jsonschema's bundled copy), every `invoke` step against
the real task list and each task's options, the environment it names against the stack file,
and the artifacts it uploads against the paths webfleet writes.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from webfleet.config import load_stack
from webfleet.drivers.packer import MANIFEST_FILE
from webfleet.stages.verify.run import JUNIT_FILE

WORKFLOW = ROOT / ".github" / "workflows" / "image-pipeline.yml"
BIN = ROOT / ".venv" / "bin"


def workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def steps() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow()["jobs"]["pipeline"]["steps"]
    return found


def invoke_calls() -> list[list[str]]:
    """Each `invoke TASK ...` command line in the workflow's run steps, as words."""
    calls = []
    for step in steps():
        for line in str(step.get("run", "")).splitlines():
            words = shlex.split(line)
            if words and words[0].endswith("/invoke"):
                calls.append(words[1:])
    return calls


def test_workflow_matches_githubs_schema() -> None:
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_bake_deploy_verify_in_that_order() -> None:
    assert [call[0] for call in invoke_calls()] == ["bake", "deploy", "verify"]


def test_every_invoke_step_uses_an_existing_task_and_its_options() -> None:
    listed = subprocess.run(
        [BIN / "invoke", "--list", "--list-format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    tasks = {task["name"] for task in json.loads(listed.stdout)["tasks"]}
    for task, *arguments in invoke_calls():
        assert task in tasks, f"invoke {task}: no such task (have {sorted(tasks)})"
        help_text = subprocess.run(
            [BIN / "invoke", task, "--help"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        for option in (a.split("=", 1)[0] for a in arguments if a.startswith("--")):
            assert re.search(rf"{re.escape(option)}\b|--\[no-\]{option[2:]}\b", help_text), (
                f"invoke {task} has no option {option}"
            )


def test_environment_it_deploys_is_an_aws_one_without_a_profile() -> None:
    name = workflow()["jobs"]["pipeline"]["env"]["WEBFLEET_ENV"]
    stack = load_stack(ROOT / "webfleet.toml", name)
    # OIDC credentials come through the default chain; a profile would shadow them.
    assert (stack.environment.kind, stack.environment.profile) == ("aws", None)


def test_credentials_come_from_oidc() -> None:
    assert workflow()["permissions"]["id-token"] == "write"
    credential_steps = [s for s in steps() if "configure-aws-credentials" in s.get("uses", "")]
    assert len(credential_steps) == 1
    assert "role-to-assume" in credential_steps[0]["with"]
    assert not any("aws-secret-access-key" in s.get("with", {}) for s in steps())


@pytest.mark.parametrize("artifact", [MANIFEST_FILE, f"verify/*{JUNIT_FILE[-4:]}"])
def test_uploads_the_manifest_and_the_junit_report(artifact: str) -> None:
    upload = next(s for s in steps() if "upload-artifact" in s.get("uses", ""))
    assert upload["if"] == "always()"  # a failed verify's report is the one most wanted
    paths = [line.strip() for line in upload["with"]["path"].splitlines()]
    assert f".webfleet/${{{{ env.WEBFLEET_ENV }}}}/{artifact}" in paths


def test_every_action_is_pinned_by_commit_sha_with_its_version_named() -> None:
    # A tag can be moved to other code; a commit cannot. The comment keeps the version readable.
    lines = [line for line in WORKFLOW.read_text().splitlines() if "uses:" in line]
    assert lines
    for line in lines:
        assert re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line
    plugin = [str(s["run"]) for s in steps() if "plugins install" in str(s.get("run", ""))]
    assert plugin and all(re.search(r" v\d+\.\d+\.\d+$", run.strip()) for run in plugin)
