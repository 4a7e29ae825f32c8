"""The examples (examples/django, node, static), each from its own directory as a user runs it:
`webfleet pipeline` there, with artifacts in that directory's .webfleet/. The three stacks run
side by side in one local region; destroying one leaves the others serving. A start command that
never answers fails the bake at its smoke check, and no AMI is made.

Real parts: the `webfleet` command, Packer, Terraform, machines booted from the baked AMIs,
HAProxy, Debian's nginx and nodejs installed offline from the bundle.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Sandbox
from tests.e2e.project_copy import PIPELINE_TIMEOUT_SECONDS, failed, run_json, use_test_clocks
from webfleet.paths import BUILD_DIR_ENV, PROJECT_DIR_ENV, ProjectPaths, stack_artifacts_dir
from webfleet.stages.deploy.outputs import read_deployment

pytestmark = [pytest.mark.e2e, pytest.mark.runtime_minutes(9)]

WEBFLEET = ROOT / ".venv" / "bin" / "webfleet"
EXAMPLES = ("django", "node", "static")
# What each example answers on its health path, through its ALB.
HEALTH = {
    "django": ("/api/v1/test/", {"connected": True}),
    "node": ("/api/healthcheck", {"status": "ok"}),
}
# Failover for one of them only (it costs a replacement); the sample's lifecycle has its own.
WITH_FAILOVER = "static"


def webfleet(
    sandbox: Sandbox, directory: Path, *args: str, timeout: float = PIPELINE_TIMEOUT_SECONDS
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`webfleet <args> --json` in the app's directory, as its user runs it (./webfleet.toml)."""
    env = {
        key: value
        for key, value in sandbox.environment().items()
        if key not in (BUILD_DIR_ENV, PROJECT_DIR_ENV)
    }
    result, document = run_json([str(WEBFLEET), *args], directory, env, timeout)
    return result, document or {}


def get(dns_name: str, port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """status, headers (names in lower case, as HAProxy sends them) and body."""
    connection = http.client.HTTPConnection(dns_name, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def copy_example(name: str, root: Path, api_port: int) -> Path:
    directory = root / name
    shutil.copytree(
        ROOT / "examples" / name,
        directory,
        ignore=shutil.ignore_patterns(".webfleet", "node_modules", "__pycache__"),
    )
    stack_file = directory / "webfleet.toml"
    text = stack_file.read_text()
    assert text.count("api_port = 4599\n") == 1
    stack_file.write_text(text.replace("api_port = 4599\n", f"api_port = {api_port}\n"))
    use_test_clocks(stack_file, grace_period=60)
    return directory


@pytest.fixture(scope="module")
def examples(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("apps")
    directories = {name: copy_example(name, root, sandbox.api_port) for name in EXAMPLES}
    try:
        yield directories
    finally:
        for directory in directories.values():
            webfleet(sandbox, directory, "destroy")


@pytest.fixture(scope="module")
def pipelines(sandbox: Sandbox, examples: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """The three pipelines at once, each from its own directory, in one region."""
    documents: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}

    def run(name: str) -> None:
        flag = "--failover" if name == WITH_FAILOVER else "--no-failover"
        result, document = webfleet(sandbox, examples[name], "pipeline", flag)
        documents[name] = document
        if result.returncode != 0:
            errors[name] = result.stderr[-3000:]

    threads = [threading.Thread(target=run, args=(name,)) for name in EXAMPLES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, {name: (errors[name], failed(documents[name])) for name in errors}
    return documents


def test_each_example_pipeline_passes_from_its_own_directory(
    pipelines: dict[str, dict[str, Any]], examples: dict[str, Path]
) -> None:
    for name, document in pipelines.items():
        assert document["passed"] is True, (name, failed(document))
        checks = {check["name"]: check for check in document["checks"]}
        # The app named its instance (X-Served-By): every one answered through the ALB.
        (distribution,) = [c for n, c in checks.items() if n.startswith("every instance answers")]
        assert distribution["outcome"] == "passed", (name, distribution)
        assert checks["test_app_answers_its_health_check"]["outcome"] == "passed"
        assert checks["test_app_listens_on_its_port"]["outcome"] == "passed"
        # Artifacts live with the stack, in the example's own directory.
        build = examples[name] / ".webfleet" / "local"
        assert (build / "terraform.tfstate").is_file() and (build / "bundle").is_dir()
    failover = [c for c in pipelines[WITH_FAILOVER]["checks"] if c["group"] == "failover"]
    assert failover and all(c["outcome"] == "passed" for c in failover), failover


def test_each_example_serves_its_app_through_its_alb(
    pipelines: dict[str, dict[str, Any]], examples: dict[str, Path]
) -> None:
    for name, (path, body) in HEALTH.items():
        deployment = read_deployment_of(examples[name])
        status, _, content = get(deployment, 80, path)
        assert (status, json.loads(content)) == (200, body), name
    # Django allows the ALB's name (APP_LOAD_BALANCER_DNS_NAME) and no other host.
    dns_name = read_deployment_of(examples["django"])
    status, _, content = get(dns_name, 80, "/api/v1/info/")
    assert status == 200 and json.loads(content)["environment"] == "local"
    # The static page says which instance answered, and both do.
    static = read_deployment_of(examples["static"])
    served = set()
    for _ in range(20):
        status, headers, content = get(static, 80, "/")
        assert status == 200
        match = re.search(rb"ip-\d+-\d+-\d+-\d+", content)
        assert match is not None, content[:500]
        assert headers["x-served-by"] == match.group().decode()
        served.add(match.group())
    assert len(served) == 2, served


def read_deployment_of(directory: Path) -> str:
    """The ALB DNS name deploy recorded in the example's own build directory."""
    paths = ProjectPaths(ROOT, stack_artifacts_dir(directory / "webfleet.toml"))
    return read_deployment(paths, "local").alb_dns_name


def test_destroying_one_stack_leaves_the_others_serving(
    sandbox: Sandbox, pipelines: dict[str, dict[str, Any]], examples: dict[str, Path]
) -> None:
    node = read_deployment_of(examples["node"])
    statuses: list[int | str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                statuses.append(get(node, 80, "/api/healthcheck")[0])
            except OSError as error:
                statuses.append(str(error))
            time.sleep(0.2)

    asking = threading.Thread(target=keep_asking)
    asking.start()
    try:
        result, _ = webfleet(sandbox, examples["django"], "destroy")
    finally:
        stop.set()
        asking.join()
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(statuses) > 10 and set(statuses) == {200}, statuses
    names = [
        lb["LoadBalancerName"]
        for lb in sandbox.target().elbv2().describe_load_balancers()["LoadBalancers"]
    ]
    assert not [n for n in names if n.startswith("django-api")], names
    assert get(read_deployment_of(examples["static"]), 80, "/")[0] == 200


def test_the_tutorials_cpu_demo_scales_out_and_back_in(
    sandbox: Sandbox, pipelines: dict[str, dict[str, Any]], examples: dict[str, Path]
) -> None:
    # The tutorial's group: one instance (at most three), a CPU target, CPU burnt on it. The
    # target is low so that the scale-out does not hang on how busy this host is (its cores
    # are shared by every machine of the test run).
    directory = examples["node"]
    stack_file = directory / "webfleet.toml"
    text = stack_file.read_text().replace("target_cpu_percent = 50", "target_cpu_percent = 20")
    stack_file.write_text(
        text.replace(
            "api_port = ", "min_size = 1\ndesired_capacity = 1\nmax_size = 3\napi_port = ", 1
        )
    )
    result, _ = webfleet(sandbox, directory, "deploy")
    assert result.returncode == 0, result.stderr[-3000:]

    result, report = webfleet(
        sandbox, directory, "load", "--rps", "0", "--cpu", "2", "--duration", "60",
        "--settle", "240",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    print(f"\ncpu load: {[(s['at'], s['desired'], s['cpu']) for s in report['samples']]}")
    assert report["sent"] == 0 and report["cpu"] == 2
    assert report["peak_desired"] >= 2, report["samples"]
    assert report["final_desired"] == 1 and report["settled_seconds"] is not None
    seen = [s["cpu"] for s in report["samples"] if s["cpu"] is not None]
    assert max(seen) > 20 and max(seen) <= 100, seen  # of the instance's 2 vCPUs
    launched = [a for a in report["activities"] if "Launching a new EC2 instance" in a]
    assert launched and all("ASGAverageCPUUtilization" in a for a in launched), launched


def test_a_start_that_never_answers_fails_the_bake_and_makes_no_ami(
    sandbox: Sandbox, examples: dict[str, Path], tmp_path: Path
) -> None:
    # A binary app whose server exits at once: the smoke check on the builder says so.
    directory = tmp_path / "broken"
    directory.mkdir()
    server = directory / "server"
    server.write_text("#!/bin/sh\necho 'cannot open config.yaml' >&2\nexit 3\n")
    server.chmod(0o755)
    text = (examples["node"] / "webfleet.toml").read_text()
    text = text.replace('name = "node-api"', 'name = "broken-binary"')
    text = re.sub(r'runtime = "node".*\n', 'runtime = "binary"\n', text)
    text = re.sub(r"start = .*\n", 'start = "./server --port $PORT"\n', text)
    (directory / "webfleet.toml").write_text(text)
    result, _ = webfleet(sandbox, directory, "bake")
    assert result.returncode != 0
    assert "smoke-check" in result.stderr and "cannot open config.yaml" in result.stderr
    images = (
        sandbox.target()
        .ec2()
        .describe_images(Filters=[{"Name": "name", "Values": ["broken-binary-*"]}])["Images"]
    )
    assert images == []
