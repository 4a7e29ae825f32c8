"""Render the files an instance needs from the stack: cloud-init user data, env file, systemd unit.

Templates live in `templates/` (files baked into or written onto the instance) and `user_data/`
(cloud-init). Output is deterministic: the same stack renders the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from webfleet.config import EnvironmentStack
from webfleet.errors import WebfleetError
from webfleet.paths import ProjectPaths

# EC2 refuses user data over 16 KB, counted before base64 encoding.
USER_DATA_LIMIT_BYTES = 16 * 1024
# Stands for the load balancer's DNS name in the env file; the stack module replaces it
# (terraform/stack/main.tf), since the name exists only once the ALB does.
LOAD_BALANCER_DNS_NAME_PLACEHOLDER = "@@WEBFLEET_LOAD_BALANCER_DNS_NAME@@"
# The longest DNS name ELB gives: internal-<32-character name>-<10 digits>.<region>.elb....
_LONGEST_DNS_NAME = 9 + 32 + 11 + len(".ap-southeast-3.elb.amazonaws.com")


class RenderError(WebfleetError):
    """A template that cannot be rendered, or a result that EC2 would refuse."""


@dataclass(frozen=True)
class RenderedFiles:
    user_data: Path
    env_file: Path
    unit_file: Path
    # The nginx config of a static app (baked into the image), else None.
    nginx_conf: Path | None = None

    def all(self) -> list[Path]:
        files = [self.user_data, self.env_file, self.unit_file]
        return files + ([self.nginx_conf] if self.nginx_conf is not None else [])


@dataclass(frozen=True)
class InstanceLayout:
    """Where the app lives on an instance: shared by the templates, the image and the checks."""

    app_name: str

    @property
    def app_user(self) -> str:
        return self.app_name

    @property
    def app_dir(self) -> str:
        return f"/opt/{self.app_name}"

    @property
    def code_dir(self) -> str:
        """The app's files (app.source as bundled); the service's working directory."""
        return f"{self.app_dir}/app"

    @property
    def venv_dir(self) -> str:
        return f"{self.app_dir}/venv"

    @property
    def nginx_conf_path(self) -> str:
        return f"{self.app_dir}/nginx.conf"

    @property
    def service_name(self) -> str:
        return f"{self.app_name}.service"

    @property
    def env_file_path(self) -> str:
        return f"/etc/{self.app_name}/app.env"

    @property
    def secrets_refs_path(self) -> str:
        return f"/etc/{self.app_name}/secrets.refs"


def render(stack: EnvironmentStack, paths: ProjectPaths) -> RenderedFiles:
    """Render every instance file for the stack's environment into .webfleet/<env>/rendered/."""
    layout = InstanceLayout(stack.app.name)
    context: dict[str, Any] = {
        "app": stack.app,
        "env_name": stack.env_name,
        "app_user": layout.app_user,
        "app_dir": layout.app_dir,
        "code_dir": layout.code_dir,
        "venv_dir": layout.venv_dir,
        "nginx_conf_path": layout.nginx_conf_path,
        "start_command": start_command(stack, layout),
        "health_check_path": stack.health_check_path,
        "service_name": layout.service_name,
        "env_file_path": layout.env_file_path,
        "secrets_refs_path": layout.secrets_refs_path,
        "load_balancer_dns_name": LOAD_BALANCER_DNS_NAME_PLACEHOLDER,
        "app_url": app_url(stack, LOAD_BALANCER_DNS_NAME_PLACEHOLDER),
    }
    environment = _jinja(paths.root)
    env_file = _render(environment, "templates/app.env.j2", context)
    unit = _render(environment, "templates/app.service.j2", context)
    nginx_conf = (
        _render(environment, "templates/nginx-static.conf.j2", context)
        if stack.app.runtime == "static"
        else None
    )
    user_data = _render(
        environment, "user_data/cloud-init.yaml.j2", {**context, "env_file": env_file}
    )
    # Counted with the longest name in the placeholders' place: what the instance will get.
    longest = user_data.replace(LOAD_BALANCER_DNS_NAME_PLACEHOLDER, "x" * _LONGEST_DNS_NAME)
    size = len(longest.encode("utf-8"))
    if size > USER_DATA_LIMIT_BYTES:
        raise RenderError(
            f"rendered user data is {size} bytes; EC2 allows {USER_DATA_LIMIT_BYTES}. "
            "Bake large files into the image instead of writing them from user data."
        )
    paths.private_build_dir(stack.env_name)
    out = paths.rendered_dir(stack.env_name)
    out.mkdir(parents=True, exist_ok=True)
    files = RenderedFiles(
        user_data=out / "user-data.yaml",
        env_file=out / "app.env",
        unit_file=out / layout.service_name,
        nginx_conf=out / "nginx.conf" if nginx_conf is not None else None,
    )
    texts = [user_data, env_file, unit] + ([nginx_conf] if nginx_conf is not None else [])
    for path, text in zip(files.all(), texts, strict=True):
        _write_if_changed(path, text)
    return files


def start_command(stack: EnvironmentStack, layout: InstanceLayout) -> str:
    """The service's command line: app.start, or Debian's nginx with the baked config (static)."""
    if stack.app.start is not None:
        return stack.app.start
    return f'/usr/sbin/nginx -c {layout.nginx_conf_path} -e stderr -g "daemon off;"'


def app_url(stack: EnvironmentStack, dns_name: str) -> str:
    """The URL users reach the app at: HTTPS when the ALB has it, the port only if not default."""
    https = stack.load_balancer.https
    scheme, port = (
        ("https", https.port) if https is not None else ("http", stack.load_balancer.http.port)
    )
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{dns_name}" + ("" if port == default else f":{port}")


def jinja_environment(root: Path) -> jinja2.Environment:
    """Templates under root as webfleet renders them all: strict, whitespace kept as written."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _jinja(root: Path) -> jinja2.Environment:
    environment = jinja_environment(root)
    environment.filters["systemd_quote"] = systemd_quote
    environment.filters["systemd_exec_shell"] = systemd_exec_shell
    return environment


def _render(environment: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return environment.get_template(name).render(context)
    except jinja2.TemplateNotFound:
        raise RenderError(f"template {name} not found under {environment.loader}") from None
    except jinja2.UndefinedError as error:
        raise RenderError(f"{name}: {error.message}") from None
    except jinja2.TemplateSyntaxError as error:
        raise RenderError(f"{name}:{error.lineno}: {error.message}") from None


_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]*$")


def systemd_quote(value: str) -> str:
    """Quote a value for a systemd EnvironmentFile line, so spaces and quotes survive."""
    if _PLAIN_VALUE.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def systemd_exec_shell(command: str) -> str:
    """An ExecStart= value that runs a shell command line, exec'd so the service's main process
    is the app. systemd would expand $VAR and %x itself: doubled, they reach the shell as
    written (so $PORT and the env file's variables are the shell's to expand)."""
    escaped = (
        command.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
    )
    return f'/bin/sh -c "exec {escaped}"'


def _write_if_changed(path: Path, text: str) -> None:
    # Unchanged files keep their mtime, so re-runs show nothing new.
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.write_text(text, encoding="utf-8")
