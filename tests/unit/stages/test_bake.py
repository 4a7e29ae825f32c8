"""webfleet/bake.py: Packer's variables from the example stack, and the baked AMI deploy reads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from webfleet.config import EnvironmentStack, load_stack
from webfleet.drivers.packer import MANIFEST_FILE, PackerError
from webfleet.errors import WebfleetError
from webfleet.paths import ProjectPaths
from webfleet.stages.bake import bundle_request, packer_variables, variables_path
from webfleet.stages.bundle import Bundle, build_bundle
from webfleet.stages.deploy.apply import baked_ami
from webfleet.stages.render import RenderedFiles, render
from webfleet.targets import cloud_target

TEMPLATE = ROOT / "packer" / "app.pkr.hcl"


def _declared_variables() -> dict[str, bool]:
    """The template's variables: name -> whether it has a default."""
    blocks = re.findall(r'^variable "(\w+)" \{\n(.*?)^\}', TEMPLATE.read_text(), re.M | re.S)
    return {name: re.search(r"^\s*default\s*=", body, re.M) is not None for name, body in blocks}


def _bundle(directory: Path) -> Bundle:
    path = directory / "app-bundle.tar.gz"
    path.write_bytes(b"bundle")
    return Bundle(
        path=path,
        tree=directory / "tree",
        manifest=directory / "tree" / "bundle.json",
        name="webfleet-app",
        version="1.0.0",
        commit="0123456789abcdef0123456789abcdef01234567",
        runtime="python",
        wheels={},
        debs={},
        cached=True,
    )


def _variables(stack: EnvironmentStack, tmp_path: Path) -> dict[str, Any]:
    unit = tmp_path / "webfleet-demo.service"
    unit.write_text("[Service]\nExecStart=/opt/webfleet-demo/venv/bin/app --bind 0.0.0.0:8000\n")
    env_file = tmp_path / "app.env"
    env_file.write_text("APP_NAME=webfleet-demo\n")
    return packer_variables(
        stack,
        cloud_target(stack),
        bundle=_bundle(tmp_path),
        rendered=RenderedFiles(tmp_path / "user-data.yaml", env_file, unit),
        manifest=tmp_path / "build" / MANIFEST_FILE,
        ssh_source_cidrs=["203.0.113.7/32"],
    )


@pytest.fixture
def local() -> EnvironmentStack:
    return load_stack(ROOT / "webfleet.toml", "local")


@pytest.fixture
def aws() -> EnvironmentStack:
    return load_stack(ROOT / "webfleet.toml", "aws")


def test_local_variables_from_the_example_stack(local: EnvironmentStack, tmp_path: Path) -> None:
    assert _variables(local, tmp_path) == {
        "app_name": "webfleet-demo",
        "app_version": "1.0.0",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "app_port": 8000,
        "health_check_path": "/healthz",
        "health_check_matcher": "200",
        "bundle_path": str(tmp_path / "app-bundle.tar.gz"),
        "unit_path": str(tmp_path / "webfleet-demo.service"),
        "env_file_path": str(tmp_path / "app.env"),
        "manifest_path": str(tmp_path / "build" / "packer-manifest.json"),
        "tags": {
            "App": "webfleet-demo",
            "Environment": "local",
            "ManagedBy": "webfleet",
            "Project": "webfleet-demo",
        },
        "base_ami_owners": ["136693071363"],
        "base_ami_name": "debian-12-amd64-*",
        "base_ami_architecture": "x86_64",
        "region": "us-east-1",
        "instance_type": "t3.micro",
        "ssh_source_cidrs": ["203.0.113.7/32"],
        # The local region: its endpoint (Packer 1.6.6 ignores AWS_ENDPOINT_URL), no public IPs.
        "ec2_endpoint": "http://127.0.0.1:4599",
        "ssh_interface": "private_ip",
    }


def test_aws_variables_use_its_region_and_sizes_and_no_endpoint(
    aws: EnvironmentStack, tmp_path: Path
) -> None:
    variables = _variables(aws, tmp_path)
    assert variables["region"] == "eu-west-1"
    assert variables["instance_type"] == "t3.small"
    assert variables["tags"]["Environment"] == "aws"
    assert "ec2_endpoint" not in variables
    assert "ssh_interface" not in variables


def test_packer_polls_every_second_only_against_the_local_region(
    local: EnvironmentStack, aws: EnvironmentStack
) -> None:
    fast = cloud_target(local).packer_environment()
    assert (fast["AWS_POLL_DELAY_SECONDS"], fast["AWS_MAX_ATTEMPTS"]) == ("1", "600")
    assert "AWS_POLL_DELAY_SECONDS" not in cloud_target(aws).packer_environment()


@pytest.mark.parametrize("env_name", ["local", "aws"])
def test_variables_are_exactly_what_the_template_declares(env_name: str, tmp_path: Path) -> None:
    declared = _declared_variables()
    assert "app_name" in declared and declared["manifest_path"]
    variables = _variables(load_stack(ROOT / "webfleet.toml", env_name), tmp_path)
    assert set(variables) <= set(declared), set(variables) - set(declared)
    required = {name for name, has_default in declared.items() if not has_default}
    assert required <= set(variables), required - set(variables)


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer not installed")
def test_var_file_is_accepted_by_the_template(local: EnvironmentStack, tmp_path: Path) -> None:
    var_file = variables_path(ProjectPaths(ROOT, tmp_path), "local")
    var_file.parent.mkdir(parents=True)
    var_file.write_text(json.dumps(_variables(local, tmp_path)))
    # No AWS_* variables: validate must not call any API.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PKR_VAR_"))}
    result = subprocess.run(
        ["packer", "validate", "-machine-readable", f"-var-file={var_file}", str(TEMPLATE)],
        env={**env, "CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Undefined variable" not in output


# --- the AMI deploy launches ----------------------------------------------------------------------


def _write_manifest(paths: ProjectPaths, builds: list[dict[str, Any]], last_run: str) -> None:
    manifest = paths.build_dir("local") / MANIFEST_FILE
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"builds": builds, "last_run_uuid": last_run}, indent=2))


def _build(run: str, artifact_id: str) -> dict[str, Any]:
    return {
        "name": "app",
        "builder_type": "amazon-ebs",
        "build_time": 1700000000,
        "files": None,
        "artifact_id": artifact_id,
        "packer_run_uuid": run,
        "custom_data": {"app_name": "webfleet-demo", "app_version": "1.0.0", "git_commit": "x"},
    }


@pytest.fixture
def paths(tmp_path: Path) -> ProjectPaths:
    return ProjectPaths(tmp_path, tmp_path / "build")


def test_no_bake_means_no_ami(paths: ProjectPaths) -> None:
    assert baked_ami(paths, "local") is None


def test_deploy_takes_the_newest_bake(paths: ProjectPaths) -> None:
    _write_manifest(
        paths,
        [
            _build("run-1", "us-east-1:ami-0000000000000001"),
            _build("run-2", "us-east-1:ami-0000000000000002"),
        ],
        "run-2",
    )
    assert baked_ami(paths, "local") == "ami-0000000000000002"
    assert baked_ami(paths, "local", region="us-east-1") == "ami-0000000000000002"
    assert baked_ami(paths, "local", region="eu-west-1") is None
    # Each environment has its own manifest.
    assert baked_ami(paths, "aws") is None


def test_a_failed_bake_leaves_the_previous_ami(paths: ProjectPaths) -> None:
    # A failed run writes nothing: last_run_uuid still names the last successful run.
    _write_manifest(
        paths,
        [
            _build("run-1", "us-east-1:ami-0000000000000001"),
            _build("run-2", "us-east-1:ami-0000000000000002"),
        ],
        "run-1",
    )
    assert baked_ami(paths, "local") == "ami-0000000000000001"


def test_a_broken_manifest_is_an_error(paths: ProjectPaths) -> None:
    _write_manifest(paths, [_build("run-1", "File")], "run-1")
    with pytest.raises(PackerError, match="not 'region:ami-…'"):
        baked_ami(paths, "local")


def test_bundle_errors_name_the_field_before_anything_is_built(
    local: EnvironmentStack, tmp_path: Path
) -> None:
    elsewhere = local.model_copy(update={"source": tmp_path / "webfleet.toml"})
    paths = ProjectPaths(ROOT, tmp_path / "build")
    request = bundle_request(elsewhere, paths, render(elsewhere, paths))
    assert request.source == (tmp_path / "examples" / "sample").resolve()
    with pytest.raises(WebfleetError, match=r"app\.source in .*: .*/sample is not a directory"):
        build_bundle(request, tmp_path / "bundle")
    request.source.mkdir(parents=True)
    with pytest.raises(WebfleetError, match=r"no requirements\.txt or pyproject\.toml"):
        build_bundle(request, tmp_path / "bundle")
    assert not (tmp_path / "bundle" / "app-bundle.tar.gz").exists()


def test_the_bundle_carries_the_builder_scripts_and_excludes_the_build_dir(
    local: EnvironmentStack, tmp_path: Path
) -> None:
    paths = ProjectPaths(ROOT, local.source.parent / ".webfleet")
    request = bundle_request(local, paths, render(local, ProjectPaths(ROOT, tmp_path)))
    assert sorted(request.files) == ["install-app.sh", "install-debs.sh", "smoke-check.sh"]
    assert request.exclude == (paths.build_dir("local"),)
    assert request.release.suite == "bookworm" and request.release.architecture == "amd64"
