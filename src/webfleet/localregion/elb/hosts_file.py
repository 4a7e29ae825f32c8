"""A managed block in /etc/hosts: the local region's load balancer DNS names → their addresses.

Written in place (not renamed over): /etc/hosts is often a bind mount, which a rename would
fail on or detach. Everything outside the block is kept byte for byte, and the block keeps its
place, so the lines before it are never touched while another region's lookups read them.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Mapping
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

        Unchanged entries are not rewritten: a resolver reading the file while it is rewritten
        may see a mix of old and new lines (measured once: a lookup failed during failover)."""
        if self.entries() == dict(names) and (names or self._begin not in self._read_lines()):
            return
        lines = [f"{address} {name}" for name, address in sorted(names.items())]
        self._update([self._begin, *lines, self._end] if lines else [])

    def remove(self) -> None:
        if self.path.exists():
            self._update([])

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

    def _update(self, block: list[str]) -> None:
        """Put `block` where this region's block is (at the end if it has none)."""
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        with self._lock, open(descriptor, "r+", encoding="utf-8") as handle:
            # Another region's daemon may write its own block at the same moment.
            fcntl.flock(handle, fcntl.LOCK_EX)
            before, after = _around_block(handle.read().splitlines(), self._begin, self._end)
            text = "\n".join([*before, *block, *after]) + "\n"
            # Overwrite, then cut to length: never the empty file a truncate-then-write leaves
            # for a moment, in which every name lookup on the host fails.
            handle.seek(0)
            handle.write(text)
            handle.flush()
            handle.truncate()


def _around_block(lines: list[str], begin: str, end: str) -> tuple[list[str], list[str]]:
    """The lines before the block and after it (all of them before, when there is no block)."""
    if begin not in lines:
        return lines, []
    start = lines.index(begin)
    stop = lines.index(end, start) if end in lines[start:] else len(lines) - 1
    return lines[:start], lines[stop + 1 :]
