"""`invoke pipeline` and `invoke verify` end to end on the local region: the real CLI, real
Packer, Terraform, machines, SSH and HAProxy load balancers.

The project is a copy of the checkout (WEBFLEET_PROJECT_DIR points the CLI at it), so the
negative test can break the app's /healthz without touching the checkout. Order matters: the
good pipeline runs first, then verify alone on what it deployed; then the stack is destroyed and
the broken app is baked and deployed from nothing; the module's fixture destroys what is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Sandbox, quiet_progress
from tests.e2e.project_copy import copy_project, invoke
from webfleet.paths import ProjectPaths
from webfleet.stages.deploy import apply as deploy_stage

pytestmark = pytest.mark.e2e

EXPECTED_SPECS = {
    "test_cloud_init_finished_without_errors",
    "test_app_user_exists_as_a_system_user",
    "test_env_file_is_readable_by_the_app_user_only",
    "test_app_service_is_enabled_and_running",
    "test_app_listens_on_its_port",
    "test_app_answers_its_health_check",
    "test_metadata_v1_is_refused_when_tokens_are_required",
    "test_user_data_holds_no_secret_values",
}


@pytest.fixture(scope="module")
def project(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectPaths]:
    paths = copy_project(sandbox, tmp_path_factory.mktemp("project"))
    try:
        yield paths
    finally:
        deploy_stage.destroy(sandbox.stack(), paths, quiet_progress())


def failed(document: dict[str, Any]) -> list[str]:
    return [
        f"{c['name']} [{c['target']}]: {c['detail']}"
        for c in document["checks"]
        if c["outcome"] == "failed"
    ]


def test_pipeline_bakes_deploys_and_verifies_with_failover(
    sandbox: Sandbox, project: ProjectPaths
) -> None:
    result, document = invoke(sandbox, project, "pipeline")
    assert result.returncode == 0, failed(document) or result.stderr[-3000:]
    assert document["passed"] is True
    assert document["stages"]["bake"]["ami_id"] == document["stages"]["deploy"]["outputs"]["ami_id"]
    assert document["expected_version"] == "1.0.0"

    checks = document["checks"]
    groups = {c["group"] for c in checks}
    assert groups == {"fleet", "specs", "http", "failover"}
    # Every spec ran on both instances of the group.
    spec_targets: dict[str, set[str]] = {}
    for check in checks:
        if check["group"] == "specs":
            spec_targets.setdefault(check["name"], set()).add(check["target"])
    assert set(spec_targets) == EXPECTED_SPECS
    assert all(len(targets) == 2 for targets in spec_targets.values()), spec_targets
    http = {c["name"]: c for c in checks if c["group"] == "http"}
    assert "HTTP listener :80 forward" in http
    assert http["app version in X-App-Version"]["outcome"] == "passed"
    assert "1.0.0" in http["app version in X-App-Version"]["detail"]

    failover = document["failover"]
    assert failover["replacement"] and failover["replacement"] != failover["victim"]
    assert failover["seconds_to_unhealthy"] is not None
    assert failover["seconds_to_replacement_healthy"] is not None
    # HAProxy retries and redispatches: the stream loses nothing.
    assert failover["requests"] > 0 and failover["failed_requests"] == 0

    junit = Path(document["junit"])
    assert junit == sandbox.paths.build_dir("local") / "verify" / "junit.xml"
    assert junit.is_file() and 'failures="0"' in junit.read_text()


def test_verify_alone_is_fast_and_passes_on_what_is_deployed(
    sandbox: Sandbox, project: ProjectPaths
) -> None:
    result, document = invoke(sandbox, project, "verify", timeout=600)
    assert result.returncode == 0, failed(document) or result.stderr[-3000:]
    assert {c["group"] for c in document["checks"]} == {"fleet", "specs", "http"}
    assert document["failover"] is None
    assert document["seconds"] < 180


def test_pipeline_with_a_broken_healthz_fails_at_verify_saying_why(
    sandbox: Sandbox, project: ProjectPaths
) -> None:
    # From nothing: a rolling refresh over the good fleet would leave some good instances
    # InService (and roll back), and this test is about what verify says of a broken app.
    deploy_stage.destroy(sandbox.stack(), project, quiet_progress())
    wsgi = project.root / "app" / "src" / "webfleet_app" / "wsgi.py"
    healthy = 'return _text("200 OK", "ok")'
    assert healthy in wsgi.read_text()
    wsgi.write_text(wsgi.read_text().replace(healthy, 'return _text("500 Broken", "broken")'))

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
