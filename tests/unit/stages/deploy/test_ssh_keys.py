"""webfleet/ssh_keys.py: the environment's SSH key is made once, private, and reused."""

from __future__ import annotations

import stat
from pathlib import Path

from webfleet.stages.deploy.ssh_keys import ensure_key, key_pair_name


def test_key_is_generated_once_with_private_mode(tmp_path: Path) -> None:
    ssh_dir = tmp_path / "build" / "local" / "ssh"
    first = ensure_key(ssh_dir, "demo-local-webfleet")
    assert first.created
    assert first.private_key == ssh_dir / "id_ed25519"
    assert stat.S_IMODE(first.private_key.stat().st_mode) == 0o600
    assert first.public_key.startswith("ssh-ed25519 ")
    assert first.public_key.endswith(" demo-local-webfleet")

    again = ensure_key(ssh_dir, "demo-local-webfleet")
    assert not again.created
    assert again.public_key == first.public_key
    assert again.private_key.read_bytes() == first.private_key.read_bytes()


def test_loose_permissions_are_tightened_and_a_lost_public_key_is_derived(tmp_path: Path) -> None:
    key = ensure_key(tmp_path, "c")
    key.private_key.chmod(0o644)
    key.private_key.with_name("id_ed25519.pub").unlink()
    again = ensure_key(tmp_path, "c")
    assert not again.created
    assert stat.S_IMODE(again.private_key.stat().st_mode) == 0o600
    # ssh-keygen -y drops the comment; the key itself is the same.
    assert again.public_key.split()[:2] == key.public_key.split()[:2]


def test_key_pair_name_is_the_stack_name_with_a_suffix() -> None:
    assert key_pair_name("webfleet-demo-local") == "webfleet-demo-local-webfleet"
