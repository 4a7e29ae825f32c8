"""A managed block in /etc/hosts: the local region's load balancer DNS names → their addresses.

Written in place (not renamed over): /etc/hosts is often a bind mount, which a rename would
fail on or detach. Everything outside the block is kept byte for byte.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

HOSTS_FILE_ENV = "WEBFLEET_HOSTS_FILE"
DEFAULT_HOSTS_FILE = Path("/etc/hosts")


def default_hosts_file() -> Path:
    return Path(os.environ.get(HOSTS_FILE_ENV) or DEFAULT_HOSTS_FILE)


class HostsBlock:
    """The lines between `# BEGIN <marker>` and `# END <marker>`, owned by one region."""

    def __init__(self, path: Path, marker: str) -> None:
        self.path = path
        self._begin = f"# BEGIN {marker}"
        self._end = f"# END {marker}"
        self._lock = threading.Lock()

    def write(self, names: Mapping[str, str]) -> None:
        """Make the block map each name to its address (an empty mapping removes the block).

        Unchanged entries are not rewritten: a rewrite in place is briefly a truncated file to a
        resolver reading it at that moment (measured: one lookup failed during failover)."""
        if self.entries() == dict(names) and (names or self._begin not in self._read_lines()):
            return
        lines = [f"{address} {name}" for name, address in sorted(names.items())]
        block = [self._begin, *lines, self._end] if lines else []
        self._update(lambda kept: kept + block)

    def remove(self) -> None:
        if self.path.exists():
            self._update(lambda kept: kept)

    def entries(self) -> dict[str, str]:
        """name → address, as the block holds them now."""
        inside = False
        found: dict[str, str] = {}
        for line in self._read_lines():
            if line == self._begin:
                inside = True
            elif line == self._end:
                inside = False
            elif inside and line.strip():
                address, name = line.split()[:2]
                found[name] = address
        return found

    def _read_lines(self) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def _update(self, compose: Callable[[list[str]], list[str]]) -> None:
        with self._lock, open(self.path, "a+", encoding="utf-8") as handle:
            # Another region's daemon may write its own block at the same moment.
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            kept = _without_block(handle.read().splitlines(), self._begin, self._end)
            text = "\n".join(compose(kept)) + "\n"
            handle.seek(0)
            handle.truncate()
            handle.write(text)


def _without_block(lines: list[str], begin: str, end: str) -> list[str]:
    kept: list[str] = []
    inside = False
    for line in lines:
        if line == begin:
            inside = True
        elif line == end:
            inside = False
        elif not inside:
            kept.append(line)
    return kept
