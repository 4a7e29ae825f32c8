"""The Packer template: the installed Packer accepts it, and it is `packer fmt` clean.

`packer validate` parses the template, evaluates its variables and prepares the builder and every
provisioner (the files they upload must exist), without calling any AWS API: no credentials and
no endpoint are given, so nothing here can reach a cloud.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

TEMPLATE = ROOT / "packer" / "app.pkr.hcl"


@pytest.fixture(scope="module")
def packer() -> str:
    path = shutil.which("packer")
    if path is None:
        pytest.fail("packer is not installed: run scripts/bootstrap")
    return path


def _run(packer: str, *args: str) -> subprocess.CompletedProcess[str]:
    # No AWS_* variables: validation must not depend on (or use) any credentials or endpoint.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PKR_VAR_"))}
    env["CHECKPOINT_DISABLE"] = "1"
    return subprocess.run(
        [packer, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _variables(tmp_path: Path, **overrides: str) -> list[str]:
    bundle = tmp_path / "app-bundle.tar.gz"
    unit = tmp_path / "webfleet-demo.service"
    bundle.write_bytes(b"not a real bundle: validate only checks that the file exists")
    unit.write_text("[Service]\nEnvironment=PORT=8000\nExecStart=/bin/true\n")
    env_file = tmp_path / "app.env"
    env_file.write_text("APP_NAME=webfleet-demo\n")
    values = {
        "app_name": "webfleet-demo",
        "app_version": "0.1.0",
        "git_commit": "0123456789abcdef",
        "region": "us-east-1",
        "bundle_path": str(bundle),
        "unit_path": str(unit),
        "env_file_path": str(env_file),
        "manifest_path": str(tmp_path / "packer-manifest.json"),
        "ssh_source_cidrs": '["203.0.113.7/32"]',
        **overrides,
    }
    return [arg for name, value in values.items() for arg in ("-var", f"{name}={value}")]


def test_template_validates_with_aws_defaults(packer: str, tmp_path: Path) -> None:
    result = _run(packer, "validate", *_variables(tmp_path), str(TEMPLATE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_validates_with_local_region_settings(packer: str, tmp_path: Path) -> None:
    # What the local region sets: its endpoint, a subnet and the builder's private IP.
    variables = _variables(
        tmp_path,
        ec2_endpoint="http://127.0.0.1:4599",
        subnet_id="subnet-0123456789abcdef0",
        vpc_id="vpc-0123456789abcdef0",
        ssh_interface="private_ip",
        ssh_timeout="2m",
        tags='{Environment="local",Project="webfleet-demo"}',
    )
    result = _run(packer, "validate", *variables, str(TEMPLATE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_bundle_is_reported(packer: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bundle.tar.gz"
    result = _run(
        packer, "validate", *_variables(tmp_path, bundle_path=str(missing)), str(TEMPLATE)
    )
    assert result.returncode != 0
    assert str(missing) in result.stdout + result.stderr


def test_required_variables_are_required(packer: str) -> None:
    result = _run(packer, "validate", "-var", "region=us-east-1", str(TEMPLATE))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for name in ("app_name", "app_version", "bundle_path", "unit_path", "ssh_source_cidrs"):
        assert f'Unset variable "{name}"' in output


def test_template_is_packer_fmt_clean(packer: str) -> None:
    result = _run(packer, "fmt", "-check", "-diff", str(TEMPLATE.parent))
    assert result.returncode == 0, "run `packer fmt packer/`:\n" + result.stdout + result.stderr
