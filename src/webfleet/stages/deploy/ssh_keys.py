"""The SSH key webfleet makes for an environment whose stack names no key pair (image.key_name).

deploy generates it once under .webfleet/<env>/ssh/ (ed25519, private key 0600) and Terraform turns
its public half into the key pair "<app>-<env>-webfleet" of the launch template; verify logs in
to the instances with the private half. Re-runs reuse the key, so the launch template (and the
fleet) does not change because of it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from webfleet.errors import WebfleetError

KEY_FILE = "id_ed25519"
PRIVATE_KEY_MODE = 0o600


@dataclass(frozen=True)
class GeneratedKey:
    private_key: Path
    public_key: str  # one line, OpenSSH format: "ssh-ed25519 AAAA... comment"
    created: bool  # False when the key already existed


def key_pair_name(stack_name: str) -> str:
    """The EC2 key pair Terraform makes from the generated key (terraform/stack/main.tf)."""
    return f"{stack_name}-webfleet"


def ensure_key(ssh_dir: Path, comment: str) -> GeneratedKey:
    """The environment's key under ssh_dir, generated with ssh-keygen the first time only."""
    private_key = ssh_dir / KEY_FILE
    public_path = private_key.with_name(KEY_FILE + ".pub")
    created = False
    if not private_key.is_file():
        keygen = shutil.which("ssh-keygen")
        if keygen is None:
            raise WebfleetError(
                "ssh-keygen is not installed (Debian: apt-get install openssh-client); "
                "deploy needs it to make the instances' SSH key, or set image.key_name"
            )
        ssh_dir.mkdir(parents=True, exist_ok=True)
        ssh_dir.chmod(0o700)
        # A half-written pair from an interrupted run would make ssh-keygen ask to overwrite.
        public_path.unlink(missing_ok=True)
        result = subprocess.run(
            [keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(private_key)],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise WebfleetError(f"ssh-keygen could not make {private_key}: {result.stderr.strip()}")
        created = True
    # ssh refuses a private key others can read.
    private_key.chmod(PRIVATE_KEY_MODE)
    if not public_path.is_file():
        public_path.write_text(_public_key_of(private_key) + "\n", encoding="utf-8")
    public_key = public_path.read_text(encoding="utf-8").strip()
    return GeneratedKey(private_key, public_key, created)


def _public_key_of(private_key: Path) -> str:
    keygen = shutil.which("ssh-keygen") or "ssh-keygen"
    result = subprocess.run(
        [keygen, "-y", "-f", str(private_key)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise WebfleetError(
            f"{private_key} is not a usable private key ({result.stderr.strip()}): "
            "remove it and deploy again"
        )
    return result.stdout.strip()
