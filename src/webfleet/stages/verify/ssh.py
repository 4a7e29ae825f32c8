"""How verify logs in to the instances: the key, user, address kind and proxy, as ssh_config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webfleet.config import EnvironmentStack
from webfleet.errors import WebfleetError
from webfleet.paths import ProjectPaths
from webfleet.stages.deploy.ssh_keys import KEY_FILE
from webfleet.stages.verify.specs import write_ssh_config


@dataclass(frozen=True)
class SshAccess:
    config_file: Path
    address: str  # private_ip, public_ip or instance_id
    user: str
    private_key: Path
    proxy_command: str | None


def ssh_access(stack: EnvironmentStack, paths: ProjectPaths, work_dir: Path) -> SshAccess:
    """The key, user, address and proxy verify logs in with; fails naming the field to set."""
    ssh = stack.environment.ssh
    if stack.image.key_name is None:
        private_key = paths.ssh_dir(stack.env_name) / KEY_FILE
        if not private_key.is_file():
            raise WebfleetError(
                f"no SSH key for the instances at {private_key}: `invoke deploy` makes it "
                "(and the key pair the instances boot with)"
            )
    else:
        configured = stack.ssh_private_key_file
        if configured is None:
            raise WebfleetError(
                f"image.key_name is {stack.image.key_name!r}: set "
                f"environments.{stack.env_name}.ssh.private_key_file to its private key so "
                "verify can log in to the instances"
            )
        if not configured.is_file():
            raise WebfleetError(
                f"environments.{stack.env_name}.ssh.private_key_file: {configured} does not exist"
            )
        private_key = configured
    config = write_ssh_config(
        work_dir / "ssh_config", stack.image.ssh_user, private_key, ssh.proxy_command
    )
    return SshAccess(
        config, stack.ssh_address, stack.image.ssh_user, private_key, ssh.proxy_command
    )
