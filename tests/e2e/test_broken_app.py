"""A broken app deployed from nothing, end to end on the local region: the real CLI, Packer,
Terraform, machines and SSH. bake and deploy succeed; verify fails and says which check, on which
instance, saw what. The stack names a key pair the user made, and verify logs in with its key.

A module (and fleet) of its own, so that a parallel run can take it beside the lifecycle module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Sandbox, quiet_progress
from tests.e2e.project_copy import (
    break_health_check_on_the_fleet,
    copy_project,
    failed,
    group,
    invoke,
    use_test_clocks,
)
from webfleet.localregion.runtime import daemon
from webfleet.paths import ProjectPaths
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.targets import region_settings

pytestmark = [pytest.mark.e2e, pytest.mark.runtime_minutes(4)]

KEY_PAIR = "webfleet-e2e"


@pytest.fixture(scope="module")
def project(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectPaths]:
    paths = copy_project(sandbox, tmp_path_factory.mktemp("project"))
    try:
        yield paths
    finally:
        deploy_stage.destroy(sandbox.stack(), paths, quiet_progress())


def test_broken_app_from_nothing_fails_at_verify_saying_why(
    sandbox: Sandbox, project: ProjectPaths, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # From nothing: a rolling refresh over a good fleet would leave good instances InService
    # (and roll back, tests/e2e/test_pipeline_lifecycle.py); this is what verify says of a
    # broken app.
    break_health_check_on_the_fleet(project)
    daemon.up(region_settings(sandbox.stack()))
    # This time the stack names a key pair the user made: the group's instances boot with it
    # and verify logs in with its private key.
    key_file = tmp_path_factory.mktemp("keys") / "webfleet-e2e.pem"
    key_file.write_text(sandbox.target().ec2().create_key_pair(KeyName=KEY_PAIR)["KeyMaterial"])
    key_file.chmod(0o600)
    # A grace period longer than the test: Auto Scaling must not replace the broken instances
    # while verify looks at them.
    use_test_clocks(sandbox.stack_file, grace_period=900)
    text = sandbox.stack_file.read_text()
    sandbox.stack_file.write_text(
        text.replace("[image]\n", f'[image]\nkey_name = "{KEY_PAIR}"\n', 1).replace(
            "api_port = ",
            f'ssh = {{ private_key_file = "{key_file}" }}\napi_port = ',
            1,
        )
    )
    assert sandbox.stack().image.key_name == KEY_PAIR

    result, document = invoke(sandbox, project, "pipeline", "--no-failover")
    assert result.returncode != 0
    assert document["passed"] is False
    # bake and deploy succeeded; verify is the stage that failed.
    assert document["stages"]["bake"]["ami_id"]
    reasons = failed(document)
    assert reasons, document["checks"]
    # Which check, which instance, what it saw: the spec on an instance saw 500 ...
    assert any(
        reason.startswith("test_app_answers_its_health_check [i-") and "500" in reason
        for reason in reasons
    ), reasons
    # ... and so does the ALB: its health check fails (AWS fails open and passes the app's 500
    # on; HAProxy with no healthy server answers 503), and the targets never turn healthy.
    assert any(
        reason.startswith("HTTP listener :80 forward [")
        and ("→ 500" in reason or "→ 503" in reason)
        for reason in reasons
    ), reasons
    assert any(reason.startswith("targets healthy [") for reason in reasons), reasons
    assert "pipeline failed" in result.stderr
    assert "test_app_answers_its_health_check on i-" in result.stderr
    # Both instances booted with the stack's key pair, and verify logged in with its private
    # key: a spec the broken app cannot fail passed on each over SSH.
    logged_in = {
        c["target"]
        for c in document["checks"]
        if c["name"] == "test_app_user_exists_as_a_system_user" and c["outcome"] == "passed"
    }
    assert len(logged_in) == 2, [c for c in document["checks"] if c["group"] == "specs"]
    members = group(sandbox, project)["Instances"]
    assert members, "no InService instance to check the key pair of"
    reservations = (
        sandbox.target()
        .ec2()
        .describe_instances(InstanceIds=[m["InstanceId"] for m in members])["Reservations"]
    )
    assert {i.get("KeyName") for r in reservations for i in r["Instances"]} == {KEY_PAIR}
