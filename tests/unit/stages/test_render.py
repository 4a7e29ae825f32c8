"""webfleet/render.py: user data, env file and unit are rendered deterministically and checked."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from webfleet.config import EnvironmentStack, load_stack
from webfleet.paths import ProjectPaths
from webfleet.stages.render import (
    LOAD_BALANCER_DNS_NAME_PLACEHOLDER,
    USER_DATA_LIMIT_BYTES,
    RenderError,
    app_url,
    render,
    systemd_exec_shell,
    systemd_quote,
)


@pytest.fixture
def project(tmp_path: Path) -> ProjectPaths:
    """A copy of the project's templates, so a test may change them without touching the repo."""
    for folder in ("templates", "user_data"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return ProjectPaths(tmp_path)


@pytest.fixture
def stack() -> EnvironmentStack:
    return load_stack(ROOT / "webfleet.toml", "local")


def test_user_data_is_cloud_config_that_writes_env_and_starts_the_service(
    project: ProjectPaths, stack: EnvironmentStack
) -> None:
    files = render(stack, project)
    text = files.user_data.read_text()
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    env_file = next(f for f in document["write_files"] if f["path"].endswith("/app.env"))
    assert env_file["path"] == "/etc/webfleet-demo/app.env"
    assert env_file["permissions"] == "0600"
    assert env_file["content"].strip() == files.env_file.read_text().strip()
    assert ["systemctl", "enable", "--now", "--no-block", "webfleet-demo.service"] in document[
        "runcmd"
    ]
    assert ["chown", "webfleet-demo:webfleet-demo", "/etc/webfleet-demo/app.env"] in document[
        "runcmd"
    ]


def test_secrets_appear_only_as_references(project: ProjectPaths, stack: EnvironmentStack) -> None:
    files = render(stack, project)
    document = yaml.safe_load(files.user_data.read_text())
    refs = next(f for f in document["write_files"] if f["path"].endswith("secrets.refs"))
    assert refs["content"].strip() == "APP_SECRET_KEY=/webfleet-demo/secret-key"
    assert "APP_SECRET_KEY" not in files.env_file.read_text()


def test_env_file_quotes_values_and_is_sorted(
    project: ProjectPaths, stack: EnvironmentStack
) -> None:
    lines = render(stack, project).env_file.read_text().splitlines()
    assert 'APP_GREETING="Hello from webfleet"' in lines
    assert "APP_PORT=8000" in lines
    app_env = [line.split("=")[0] for line in lines if line.startswith(("APP_GREETING", "LOG_"))]
    assert app_env == sorted(app_env)


def test_unit_runs_the_app_as_its_user_on_its_port(
    project: ProjectPaths, stack: EnvironmentStack
) -> None:
    unit = render(stack, project).unit_file.read_text()
    assert "User=webfleet-demo\n" in unit
    assert "EnvironmentFile=/etc/webfleet-demo/app.env\n" in unit
    # app.start, through a shell that expands $PORT (doubled for systemd, which would expand it).
    assert "Environment=PORT=8000\n" in unit
    assert "Environment=PATH=/opt/webfleet-demo/venv/bin:/usr/local/bin:/usr/bin:/bin\n" in unit
    assert (
        'ExecStart=/bin/sh -c "exec gunicorn webfleet_app.wsgi:application --bind 0.0.0.0:$$PORT '
        '--workers 2 --access-logfile -"\n'
    ) in unit


def test_start_reaches_the_shell_as_written() -> None:
    command = 'echo "hi" \\o/ $HOME 100% ${PORT}'
    line = systemd_exec_shell(command)
    assert line == '/bin/sh -c "exec echo \\"hi\\" \\\\o/ $$HOME 100%% $${PORT}"'
    # What systemd hands the shell after its own unquoting (C escapes, $$ and %% undone):
    argument = line.removeprefix('/bin/sh -c "').removesuffix('"')
    unquoted = (
        argument.replace("\\\\", "\0")
        .replace('\\"', '"')
        .replace("\0", "\\")
        .replace("$$", "$")
        .replace("%%", "%")
    )
    assert unquoted == f"exec {command}"


def test_rendering_is_deterministic_and_leaves_unchanged_files_alone(
    project: ProjectPaths, stack: EnvironmentStack
) -> None:
    first = render(stack, project)
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in first.all()}
    second = render(stack, project)
    after = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in second.all()}
    assert before == after


def test_the_build_directory_is_its_owners_alone(
    project: ProjectPaths, stack: EnvironmentStack
) -> None:
    # It holds the env file, and later the SSH key and Terraform's state: 0700, and an existing
    # directory left readable by others is tightened.
    build_dir = project.build_dir(stack.env_name)
    build_dir.mkdir(parents=True)
    build_dir.chmod(0o755)
    build_dir.parent.chmod(0o755)
    render(stack, project)
    assert build_dir.stat().st_mode & 0o777 == 0o700
    assert build_dir.parent.stat().st_mode & 0o777 == 0o700


def test_environment_changes_the_output(project: ProjectPaths) -> None:
    local = render(load_stack(ROOT / "webfleet.toml", "local"), project)
    aws = render(load_stack(ROOT / "webfleet.toml", "aws"), project)
    assert local.user_data.read_text() != aws.user_data.read_text()
    assert "APP_ENVIRONMENT=aws" in aws.env_file.read_text()


def test_user_data_over_16_kb_is_refused(project: ProjectPaths, stack: EnvironmentStack) -> None:
    big = stack.app.model_copy(update={"env": {"BIG": "x" * USER_DATA_LIMIT_BYTES}})
    with pytest.raises(RenderError, match=r"user data is \d+ bytes; EC2 allows 16384"):
        render(stack.model_copy(update={"app": big}), project)


def test_undefined_template_variable_is_an_error(
    project: ProjectPaths, stack: EnvironmentStack
) -> None:
    template = project.root / "templates" / "app.env.j2"
    template.write_text(template.read_text() + "{{ no_such_value }}\n")
    with pytest.raises(RenderError, match="no_such_value"):
        render(stack, project)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain-value_1.2", "plain-value_1.2"),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("line\nbreak", '"line\\nbreak"'),
        ("", ""),
    ],
)
def test_systemd_quote(value: str, quoted: str) -> None:
    assert systemd_quote(value) == quoted


def test_env_file_names_the_load_balancer_through_a_placeholder_terraform_fills(
    project: ProjectPaths, stack: EnvironmentStack
) -> None:
    env = render(stack, project).env_file.read_text()
    assert f"APP_LOAD_BALANCER_DNS_NAME={LOAD_BALANCER_DNS_NAME_PLACEHOLDER}\n" in env
    assert f"APP_URL=http://{LOAD_BALANCER_DNS_NAME_PLACEHOLDER}\n" in env
    # The stack module replaces exactly this text (terraform/stack/main.tf).
    main_tf = (ROOT / "terraform" / "stack" / "main.tf").read_text()
    assert f'replace(var.user_data, "{LOAD_BALANCER_DNS_NAME_PLACEHOLDER}"' in main_tf


@pytest.mark.parametrize(
    ("listeners", "url"),
    [
        ({}, "http://alb.example"),
        ({"http": {"port": 8080, "action": "forward"}}, "http://alb.example:8080"),
        (
            {"https": {"port": 443, "certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x"}},
            "https://alb.example",
        ),
        (
            {"https": {"port": 8443, "certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x"}},
            "https://alb.example:8443",
        ),
    ],
)
def test_app_url_is_the_https_listener_when_there_is_one(
    stack: EnvironmentStack, listeners: dict[str, Any], url: str
) -> None:
    balancer = stack.load_balancer.model_validate({**stack.load_balancer.model_dump(), **listeners})
    assert app_url(stack.model_copy(update={"load_balancer": balancer}), "alb.example") == url


def test_static_app_gets_nginx_with_its_port_health_path_and_instance_name(
    project: ProjectPaths,
) -> None:
    static = load_stack(ROOT / "examples" / "static" / "webfleet.toml", "local")
    health = static.model_copy(
        update={"app": static.app.model_copy(update={"health_check_path": "/health"})}
    )
    files = render(health, project)
    assert files.nginx_conf is not None and files.nginx_conf in files.all()
    conf = files.nginx_conf.read_text()
    assert "listen 80 default_server;" in conf
    assert "root /opt/static-site/app;" in conf
    assert "location = /health {" in conf and "ssi on;" in conf
    assert "add_header X-Served-By $hostname always;" in conf
    unit = files.unit_file.read_text()
    assert (
        'ExecStart=/bin/sh -c "exec /usr/sbin/nginx -c /opt/static-site/nginx.conf -e stderr '
        '-g \\"daemon off;\\""' in unit
    )
    # Port 80 without root: the one capability it needs.
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit
    assert "RuntimeDirectory=static-site" in unit and "NoNewPrivileges=true" in unit
    # "/" is a file of the site: no location of its own.
    plain = render(static, project).nginx_conf
    assert plain is not None and "location = /" not in plain.read_text()


def test_node_and_python_units_put_their_tools_first_on_path(project: ProjectPaths) -> None:
    node = render(load_stack(ROOT / "examples" / "node" / "webfleet.toml", "local"), project)
    unit = node.unit_file.read_text()
    assert "Environment=PATH=/opt/node-api/app/node_modules/.bin:/usr/local/bin" in unit
    assert "WorkingDirectory=/opt/node-api/app" in unit and node.nginx_conf is None
    assert "AmbientCapabilities" not in unit  # port 3000
    sample = render(load_stack(ROOT / "webfleet.toml", "local"), project).unit_file.read_text()
    assert "Environment=PATH=/opt/webfleet-demo/venv/bin:" in sample
