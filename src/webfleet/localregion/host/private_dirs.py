"""The region's state directory is its owner's alone: it holds the instances' SSH host keys, the
saved records (user data, imported certificates' keys) and the balancers' stats sockets."""

from __future__ import annotations

from pathlib import Path

PRIVATE_MODE = 0o700


def private_directory(path: Path) -> Path:
    """path, created if missing, readable by its owner only (an existing one is tightened)."""
    path.mkdir(mode=PRIVATE_MODE, parents=True, exist_ok=True)
    path.chmod(PRIVATE_MODE)
    return path
