"""Rolling deploys and scaling end to end on the local region.

`invoke pipeline` after an app change rolls the new AMI through the fleet with an instance
refresh under a request stream through the ALB, and a broken app rolls itself back while the
fleet keeps serving.

`invoke load` then drives requests through the ALB until target tracking scales the group out,
and watches it scale back in.

Real CLI, Packer, Terraform (the provider starts the refresh), machines and HAProxy. Order
matters: a first pipeline deploys 1.0.0 from nothing, the second rolls 1.1.0 in, the third
tries a broken 1.2.0 (rolled back), then the load runs on the 1.1.0 fleet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Sandbox, quiet_progress
from tests.e2e.project_copy import copy_project, invoke
from webfleet import traffic
from webfleet.paths import ProjectPaths
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.stages.deploy.outputs import read_deployment

pytestmark = pytest.mark.e2e

# Shorter than the example stack's 60 s so that a refresh of 2 instances takes about a minute;
# everything else (health checks every 10 s, 2 to turn healthy, 10 s drain) is the example's.
WARMUP_SECONDS = 10


@pytest.fixture(scope="module")
def project(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectPaths]:
    text = sandbox.stack_file.read_text()
    assert "instance_warmup = 60" in text
    sandbox.stack_file.write_text(
        text.replace("instance_warmup = 60", f"instance_warmup = {WARMUP_SECONDS}")
    )
    paths = copy_project(sandbox, tmp_path_factory.mktemp("project"))
    try:
        yield paths
    finally:
        deploy_stage.destroy(sandbox.stack(), paths, quiet_progress())


def set_app_version(project: ProjectPaths, old: str, new: str) -> None:
    pyproject = project.root / "app" / "pyproject.toml"
    text = pyproject.read_text()
    assert f'version = "{old}"' in text
    pyproject.write_text(text.replace(f'version = "{old}"', f'version = "{new}"'))


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


def test_first_pipeline_deploys_from_nothing_without_a_refresh(
    sandbox: Sandbox, project: ProjectPaths
) -> None:
    result, document = invoke(sandbox, project, "pipeline", "--no-failover")

    assert result.returncode == 0, result.stderr
    assert document["passed"] is True
    assert document["stages"]["rollout"] == {"traffic": None}
    assert document["expected_version"] == "1.0.0"


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
    wsgi = project.root / "app" / "src" / "webfleet_app" / "wsgi.py"
    healthy = 'return _text("200 OK", "ok")'
    assert healthy in wsgi.read_text()
    wsgi.write_text(wsgi.read_text().replace(healthy, 'return _text("500 Broken", "broken")'))
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
    descriptions = [a.split(": ", 1)[0] for a in report["activities"]]
    assert any("Launching 2 new EC2 instance(s)" in d for d in descriptions), descriptions
    assert any("Terminating" in d for d in descriptions), descriptions
    seen = [s["requests_per_target"] for s in report["samples"] if s["requests_per_target"]]
    assert max(seen) > 1000, seen  # the metric the policy acted on, from HAProxy
    # The CPU policy's metric, from the machines' cgroups, is measured and published too.
    assert any(s["cpu"] is not None and s["cpu"] > 0 for s in report["samples"]), report["samples"]
