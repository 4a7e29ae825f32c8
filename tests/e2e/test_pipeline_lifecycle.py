"""The pipeline's whole life on one fleet, end to end on the local region: the real CLI, real
Packer, Terraform, machines, SSH and HAProxy load balancers.

One fleet serves every test, in order: a first `invoke pipeline` bakes 1.0.0 and deploys it from
nothing (verify with failover), `invoke verify` alone checks it again, a second pipeline rolls
1.1.0 through the fleet under a request stream, a third tries a broken 1.2.0 (rolled back while
the fleet keeps serving), last `invoke load` scales the fleet out and back in. (A broken app
deployed from nothing is tests/e2e/test_broken_app.py: a fleet of its own, so that a parallel
run can take it beside this one.)

The project is a copy of the checkout (WEBFLEET_PROJECT_DIR points the CLI at it), so the tests
change the app without touching the checkout; the module's fixture destroys what is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Sandbox, quiet_progress
from tests.e2e.project_copy import (
    SAMPLE_APP,
    break_health_check_on_the_fleet,
    copy_project,
    failed,
    group,
    invoke,
    use_test_clocks,
)
from webfleet import traffic
from webfleet.paths import ProjectPaths
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.stages.deploy.outputs import read_deployment

pytestmark = [pytest.mark.e2e, pytest.mark.runtime_minutes(11)]

# Long enough for a healthy instance to pass its checks with time to spare (about 20 s here);
# the broken version's refresh waits it out before it fails and rolls back.
GRACE_PERIOD_SECONDS = 60

EXPECTED_SPECS = {
    "test_cloud_init_finished_without_errors",
    "test_app_user_exists_as_a_system_user",
    "test_env_file_is_readable_by_the_app_user_only",
    "test_env_file_names_the_load_balancer",
    "test_app_service_is_enabled_and_running",
    "test_app_listens_on_its_port",
    "test_app_answers_its_health_check",
    "test_metadata_v1_is_refused_when_tokens_are_required",
    "test_user_data_holds_no_secret_values",
}


@pytest.fixture(scope="module")
def project(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectPaths]:
    use_test_clocks(sandbox.stack_file, grace_period=GRACE_PERIOD_SECONDS)
    paths = copy_project(sandbox, tmp_path_factory.mktemp("project"))
    try:
        yield paths
    finally:
        deploy_stage.destroy(sandbox.stack(), paths, quiet_progress())


def set_app_version(project: ProjectPaths, old: str, new: str) -> None:
    pyproject = project.root / SAMPLE_APP / "pyproject.toml"
    text = pyproject.read_text()
    assert f'version = "{old}"' in text
    pyproject.write_text(text.replace(f'version = "{old}"', f'version = "{new}"'))


def test_pipeline_bakes_deploys_and_verifies_with_failover(
    sandbox: Sandbox, project: ProjectPaths
) -> None:
    result, document = invoke(sandbox, project, "pipeline")
    assert result.returncode == 0, failed(document) or result.stderr[-3000:]
    assert document["passed"] is True
    assert document["stages"]["bake"]["ami_id"] == document["stages"]["deploy"]["outputs"]["ami_id"]
    assert document["expected_version"] == "1.0.0"
    # From nothing: the first deploy creates the group, it starts no instance refresh.
    assert document["stages"]["rollout"] == {"traffic": None}

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


def test_new_version_rolls_through_with_no_failed_request(
    sandbox: Sandbox, project: ProjectPaths
) -> None:
    set_app_version(project, "1.0.0", "1.1.0")

    result, document = invoke(sandbox, project, "pipeline", "--no-failover")

    assert result.returncode == 0, result.stderr
    rollout = document["stages"]["rollout"]
    print(f"\nrolling deploy of 2 instances: {rollout}")  # shown with -s: the measured numbers
    assert rollout["status"] == "Successful", rollout
    traffic = rollout["traffic"]
    assert traffic["failed"] == 0, traffic
    assert traffic["requests"] > 100, traffic
    # Old answers first, then both while the fleet is mixed, then only the new version.
    assert traffic["versions"] == ["1.0.0", "1.1.0"], traffic
    assert traffic["final_version"] == "1.1.0", traffic
    assert document["passed"] is True
    assert document["expected_version"] == "1.1.0"
    instances = group(sandbox, project)["Instances"]
    assert len(instances) == 2
    assert len({i["LaunchTemplate"]["Version"] for i in instances}) == 1


def test_broken_version_rolls_back_and_the_fleet_keeps_serving(
    sandbox: Sandbox, project: ProjectPaths
) -> None:
    before = group(sandbox, project)
    good_version = before["LaunchTemplate"]["Version"]
    break_health_check_on_the_fleet(project)
    set_app_version(project, "1.1.0", "1.2.0")

    result, document = invoke(sandbox, project, "pipeline", "--no-failover")

    assert result.returncode != 0
    assert document["passed"] is False
    assert "instance refresh RollbackSuccessful" in document["error"], document["error"]
    # Why, whichever noticed first (the refresh, or Auto Scaling replacing the instance): the
    # target group's health check saw the broken /healthz.
    assert "Health checks failed with these codes: [500]" in document["error"], document["error"]
    assert "instance refresh RollbackSuccessful" in result.stderr
    after = group(sandbox, project)
    assert after["LaunchTemplate"]["Version"] == good_version
    assert {i["LaunchTemplate"]["Version"] for i in after["Instances"]} == {good_version}
    # Still serving the good version through the ALB.
    dns_name = read_deployment(project, "local").alb_dns_name
    listener = traffic.Listener("HTTP", 80, "forward")
    answers = [traffic.fetch(dns_name, listener, "/") for _ in range(10)]
    assert all(a.ok and a.version == "1.1.0" for a in answers), [a.describe() for a in answers]


def test_load_scales_the_fleet_out_and_back_in(sandbox: Sandbox, project: ProjectPaths) -> None:
    # 60 requests/s over 2 targets is 1800 per target per minute, against the stack's target
    # tracking of 1000: the group wants 4 (its max); after the load it returns to 2 (its min).
    result, report = invoke(
        sandbox, project, "load", "--rps", "60", "--duration", "75", "--settle", "240"
    )

    assert result.returncode == 0, result.stderr
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(f"\nload: {summary}\nsamples: {report['samples']}")  # shown with -s
    assert report["sent"] >= 60 * 70, report["sent"]
    assert report["failed"] == 0, report["first_failure"]
    assert report["peak_desired"] == 4, report["samples"]
    assert report["settled_seconds"] is not None, report["samples"][-3:]
    assert report["final_desired"] == 2
    # The activity history names each instance the policy launched and terminated, and why.
    launched = [a for a in report["activities"] if "Launching a new EC2 instance: i-" in a]
    assert len(launched) == 2 and all("triggered policy" in a for a in launched), launched
    terminated = [a for a in report["activities"] if "Terminating EC2 instance: i-" in a]
    assert len(terminated) == 2, terminated
    assert all("shrinking the capacity from" in a for a in terminated), terminated
    seen = [s["requests_per_target"] for s in report["samples"] if s["requests_per_target"]]
    assert max(seen) > 1000, seen  # the metric the policy acted on, from HAProxy
    # The CPU policy's metric, from the machines' cgroups, is measured and published too.
    assert any(s["cpu"] is not None and s["cpu"] > 0 for s in report["samples"]), report["samples"]
