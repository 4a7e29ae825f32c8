"""The pid file that names the running region daemon, its address and when it started."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class PidRecord:
    pid: int
    host: str
    port: int
    started_at: float  # seconds since the epoch


def write_pid_record(path: Path, record: PidRecord) -> None:
    # Written whole or not at all, so a reader never sees half a record.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
    partial.replace(path)


def read_pid_record(path: Path) -> PidRecord | None:
    """The record in the pid file; None when the file is missing or not a valid record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(
            pid=int(data["pid"]),
            host=str(data["host"]),
            port=int(data["port"]),
            started_at=float(data["started_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
