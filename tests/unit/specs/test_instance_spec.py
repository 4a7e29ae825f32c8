"""specs/test_instance.py: the user-data secrets spec against user data we control.

The spec runs on real instances during verify; here a fake testinfra host serves it user data,
so its verdicts on leaking and well-behaved user data are pinned down.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT
from webfleet.config import load_stack
from webfleet.paths import ProjectPaths
from webfleet.stages.render import render
from webfleet.stages.verify.specs import SpecContext


def load_specs() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "infra_specs", ROOT / "specs" / "test_instance.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


specs = load_specs()


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str = ""


class FakeHost:
    """Just enough of testinfra's host: IMDSv2 token, then the user data."""

    def __init__(self, user_data: str) -> None:
        self.user_data = user_data

    def check_output(self, command: str) -> str:
        assert "/api/token" in command and "-X PUT" in command
        return "token"

    def run(self, command: str) -> Result:
        assert "X-aws-ec2-metadata-token: token" in command and command.endswith("/user-data")
        return Result(0, self.user_data)


@pytest.fixture
def expected() -> dict[str, Any]:
    return asdict(SpecContext.of_stack(load_stack(ROOT / "webfleet.toml", "local")))


@pytest.fixture
def user_data(tmp_path: Path) -> str:
    for folder in ("templates", "user_data"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    rendered = render(load_stack(ROOT / "webfleet.toml", "local"), ProjectPaths(tmp_path))
    return rendered.user_data.read_text()


def test_rendered_user_data_passes(user_data: str, expected: dict[str, Any]) -> None:
    assert expected["secrets"] == {"APP_SECRET_KEY": "/webfleet-demo/secret-key"}
    specs.test_user_data_holds_no_secret_values(FakeHost(user_data), expected)


@pytest.mark.parametrize(
    "leak",
    [
        "      APP_SECRET_KEY=hunter2",
        "      export APP_SECRET_KEY='hunter2'",
        "    APP_SECRET_KEY: hunter2",
    ],
)
def test_a_secret_value_in_user_data_fails_without_printing_it(
    user_data: str, expected: dict[str, Any], leak: str
) -> None:
    leaking = user_data.replace("runcmd:", leak + "\nruncmd:", 1)
    with pytest.raises(AssertionError) as error:
        specs.test_user_data_holds_no_secret_values(FakeHost(leaking), expected)
    assert "APP_SECRET_KEY" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_missing_references_fail(user_data: str, expected: dict[str, Any]) -> None:
    without = user_data.replace("APP_SECRET_KEY=/webfleet-demo/secret-key", "")
    with pytest.raises(AssertionError, match="no reference for APP_SECRET_KEY"):
        specs.test_user_data_holds_no_secret_values(FakeHost(without), expected)


def test_no_secrets_skips(user_data: str, expected: dict[str, Any]) -> None:
    with pytest.raises(pytest.skip.Exception):
        specs.test_user_data_holds_no_secret_values(
            FakeHost(user_data), {**expected, "secrets": {}}
        )


class EnvFileHost:
    """Just enough of testinfra's host to `sudo cat` one env file."""

    def __init__(self, content: str) -> None:
        self.content = content

    def check_output(self, command: str, *args: str) -> str:
        assert command == "sudo cat %s" and args == ("/etc/webfleet-demo/app.env",)
        return self.content


DNS_NAME = "shop-local-alb-1234567890.us-east-1.elb.amazonaws.com"


@pytest.mark.parametrize(
    ("content", "passes"),
    [
        (f"APP_LOAD_BALANCER_DNS_NAME={DNS_NAME}\nAPP_URL=http://{DNS_NAME}\n", True),
        (f"APP_LOAD_BALANCER_DNS_NAME={DNS_NAME}\nAPP_URL=https://{DNS_NAME}:8443\n", True),
        # Terraform did not fill the placeholder, or another balancer's name:
        ("APP_LOAD_BALANCER_DNS_NAME=@@WEBFLEET_LOAD_BALANCER_DNS_NAME@@\n", False),
        (f"APP_LOAD_BALANCER_DNS_NAME=other-1.{DNS_NAME}\nAPP_URL=http://{DNS_NAME}\n", False),
        (f"APP_LOAD_BALANCER_DNS_NAME={DNS_NAME}\n", False),
    ],
)
def test_env_file_spec_wants_the_deployed_load_balancers_name(
    expected: dict[str, Any], content: str, passes: bool
) -> None:
    context = {**expected, "load_balancer_dns_name": DNS_NAME}
    if passes:
        specs.test_env_file_names_the_load_balancer(EnvFileHost(content), context)
    else:
        with pytest.raises(AssertionError):
            specs.test_env_file_names_the_load_balancer(EnvFileHost(content), context)
