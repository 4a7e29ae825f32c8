"""Start, stop and inspect the local region daemon: `invoke local.up|down|status` call these."""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from webfleet.localregion.ec2.instances import remove_leftovers
from webfleet.localregion.ec2.machines import Machine, MachineRuntime
from webfleet.localregion.elb.load_balancers import remove_load_balancers
from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.procfs import is_alive
from webfleet.localregion.images.baseimage import ensure_base_image
from webfleet.localregion.persistence.region_state import (
    Restored,
    restored_by_running_daemon,
    state_files,
)
from webfleet.localregion.runtime.pidfile import PidRecord, read_pid_record, write_pid_record
from webfleet.localregion.runtime.ports import ensure_port_free, port_is_free
from webfleet.localregion.runtime.probe import api_answers, sts_client
from webfleet.localregion.runtime.processes import (
    is_region_daemon,
    spawn_daemon,
    stop_daemon,
    wait_until,
)
from webfleet.localregion.runtime.settings import RegionSettings
from webfleet.paths import private_directory

START_TIMEOUT_SECONDS = 60.0
# The daemon halts its machines before it exits (1-3 s each, in parallel; nspawn's own grace is
# 20 s): SIGKILL only after that, as `down` then cleans up from outside anyway.
STOP_GRACE_SECONDS = 45.0
_PROBE_TIMEOUT_SECONDS = 2.0
_PORT_RELEASE_SECONDS = 10.0
_LOG_TAIL_LINES = 20


def _ignore(_message: str) -> None:
    pass


class RegionState(enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    # The pid file names a process that is gone or is not this region's daemon.
    STALE = "stale"


@dataclass(frozen=True)
class RegionStatus:
    state: RegionState
    pid: int | None
    endpoint_url: str
    started_at: float | None  # seconds since the epoch, while running
    state_dir: Path
    log_file: Path
    machines: tuple[Machine, ...] = ()
    # The records a killed daemon saved, when this one started from them.
    restored: Restored | None = None

    @property
    def running(self) -> bool:
        return self.state is RegionState.RUNNING

    @property
    def uptime_seconds(self) -> float | None:
        return None if self.started_at is None else max(0.0, time.time() - self.started_at)

    def describe(self) -> str:
        if self.state is RegionState.RUNNING:
            uptime = self.uptime_seconds or 0.0
            return (
                f"local region running at {self.endpoint_url} (pid {self.pid}, up {uptime:.0f} s)"
                f"\n  state {self.state_dir}\n  log   {self.log_file}{self._describe_restore()}"
                f"\n{self._describe_machines()}"
            )
        if self.state is RegionState.STALE:
            return (
                f"local region not running: stale pid file (pid {self.pid} is gone or not the "
                f"region's); `up` cleans it up and starts, `down` removes it"
                f"\n  log   {self.log_file}"
            )
        return f"local region not running (state {self.state_dir})"

    def _describe_restore(self) -> str:
        if self.restored is None:
            return ""
        saved = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.restored.saved_at))
        return (
            f"\n  restored the records a killed daemon saved at {saved}: what it did in its "
            "last second may be lost; re-run what was running then"
        )

    def _describe_machines(self) -> str:
        if not self.machines:
            return "machines: none"
        rows = [("INSTANCE", "AMI", "PRIVATE IP", "AZ", "STATE", "UPTIME")]
        rows += [
            (
                m.instance_id,
                m.ami_id,
                m.private_ip,
                m.availability_zone,
                m.state.value,
                "-" if m.uptime_seconds is None else f"{m.uptime_seconds:.0f} s",
            )
            for m in self.machines
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        return f"machines: {len(self.machines)}\n" + "\n".join(
            "  " + line.rstrip() for line in lines
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "machines": [
                {
                    "instance_id": m.instance_id,
                    "ami_id": m.ami_id,
                    "private_ip": m.private_ip,
                    "availability_zone": m.availability_zone,
                    "state": m.state.value,
                    "uptime_seconds": m.uptime_seconds,
                }
                for m in self.machines
            ],
            "state": self.state.value,
            "pid": self.pid,
            "endpoint_url": self.endpoint_url,
            "started_at": self.started_at,
            "uptime_seconds": self.uptime_seconds,
            "state_dir": str(self.state_dir),
            "log_file": str(self.log_file),
            "restored_saved_at": None if self.restored is None else self.restored.saved_at,
        }


@dataclass(frozen=True)
class DownReport:
    stopped_pid: int | None  # the daemon that was stopped, if one was running
    forced: bool  # it ignored SIGTERM and needed SIGKILL
    stale_pid: int | None  # named by a stale pid file: left alone, never signalled
    removed: tuple[Path, ...]

    def describe(self) -> str:
        if self.stopped_pid is not None:
            how = "killed with SIGKILL after ignoring SIGTERM" if self.forced else "stopped"
            lines = [f"local region {how} (pid {self.stopped_pid})"]
        elif self.stale_pid is not None:
            lines = [f"local region was not running (stale pid {self.stale_pid} left alone)"]
        else:
            lines = ["local region was not running"]
        lines += [f"  removed {path}" for path in self.removed]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "stopped_pid": self.stopped_pid,
            "forced": self.forced,
            "stale_pid": self.stale_pid,
            "removed": [str(path) for path in self.removed],
        }


def status(settings: RegionSettings) -> RegionStatus:
    """What the pid file says, checked against the process table. Signals nothing."""
    if not settings.pid_file.exists():
        return _status(settings, RegionState.STOPPED, None)
    record = read_pid_record(settings.pid_file)
    if record is None or not is_region_daemon(record.pid, settings.state_dir):
        return _status(settings, RegionState.STALE, record)
    return _status(settings, RegionState.RUNNING, record)


def up(
    settings: RegionSettings,
    timeout_seconds: float = START_TIMEOUT_SECONDS,
    on_progress: Callable[[str], None] = _ignore,
) -> RegionStatus:
    """Start the daemon unless it runs already; returns once the API answers.

    The base image its machines boot is built first if it is not cached (minutes, once), so
    the daemon itself starts in seconds.
    """
    with _one_up_at_a_time(settings):
        return _up(settings, timeout_seconds, on_progress)


def _up(
    settings: RegionSettings, timeout_seconds: float, on_progress: Callable[[str], None]
) -> RegionStatus:
    current = status(settings)
    if current.running:
        if current.endpoint_url != settings.endpoint_url:
            raise LocalRegionError(
                f"The local region in {settings.state_dir} already runs at "
                f"{current.endpoint_url}, not {settings.endpoint_url}: use that endpoint, or "
                f"run `down` first to restart it on the new address."
            )
        return current
    if current.state is RegionState.STALE:
        # Left by a daemon that crashed or was killed: nothing of it runs any more, though one
        # killed a moment ago may still be closing its API socket as its threads exit.
        settings.pid_file.unlink(missing_ok=True)
        wait_until(lambda: port_is_free(settings.host, settings.port), _PORT_RELEASE_SECONDS)
    ensure_port_free(settings.host, settings.port)
    ensure_base_image(settings.image_cache, on_progress)

    pid = spawn_daemon(settings)
    record = PidRecord(pid=pid, host=settings.host, port=settings.port, started_at=time.time())
    write_pid_record(settings.pid_file, record)
    try:
        _wait_until_answering(settings, pid, timeout_seconds)
    except BaseException:
        # Also on Ctrl-C: a half-started daemon must not outlive the `up` that made it.
        stop_daemon(pid, grace_seconds=STOP_GRACE_SECONDS)
        settings.pid_file.unlink(missing_ok=True)
        raise
    return _status(settings, RegionState.RUNNING, record)


def down(settings: RegionSettings, grace_seconds: float = STOP_GRACE_SECONDS) -> DownReport:
    """Stop the daemon if it runs and remove what the region made in its state directory."""
    current = status(settings)
    stopped_pid = stale_pid = None
    forced = False
    if current.running and current.pid is not None:
        forced = stop_daemon(current.pid, grace_seconds)
        stopped_pid = current.pid
    elif current.state is RegionState.STALE:
        stale_pid = current.pid
    # A daemon that stopped cleanly removed its machines and balancers; a killed one could not.
    remove_leftovers(settings)
    remove_load_balancers(settings.state_dir)
    return DownReport(
        stopped_pid=stopped_pid,
        forced=forced,
        stale_pid=stale_pid,
        removed=_remove_region_files(settings),
    )


@contextlib.contextmanager
def _one_up_at_a_time(settings: RegionSettings) -> Iterator[None]:
    # Two tasks starting the region on demand at once would otherwise both spawn a daemon.
    private_directory(settings.state_dir)
    directory = os.open(settings.state_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)
        yield
    finally:
        os.close(directory)  # releases the lock


def _wait_until_answering(settings: RegionSettings, pid: int, timeout_seconds: float) -> None:
    client = sts_client(settings.endpoint_url, _PROBE_TIMEOUT_SECONDS)
    exited = False

    def ready() -> bool:
        nonlocal exited
        exited = not is_alive(pid)
        return exited or api_answers(client)

    if not wait_until(ready, timeout_seconds, interval=0.1):
        raise LocalRegionError(
            f"The local region API did not answer at {settings.endpoint_url} within "
            f"{timeout_seconds:.0f} s. Its log {settings.log_file} ends with:\n"
            f"{_log_tail(settings.log_file)}\nFix the cause above, or retry with a longer timeout."
        )
    if exited:
        raise LocalRegionError(
            f"The local region daemon (pid {pid}) exited at start. "
            f"Its log {settings.log_file} ends with:\n{_log_tail(settings.log_file)}\n"
            f"Fix the cause above and run `up` again."
        )


def _remove_region_files(settings: RegionSettings) -> tuple[Path, ...]:
    # Only what the region itself writes: the state dir may be one the user shares.
    removed: list[Path] = []
    for path in (
        settings.pid_file,
        settings.ami_catalogue,
        settings.log_file,
        *state_files(settings.state_dir),
    ):
        if path.is_file():
            path.unlink()
            removed.append(path)
    try:
        settings.state_dir.rmdir()
    except OSError:
        pass  # missing, or holds files that are not ours: leave it
    else:
        removed.append(settings.state_dir)
    return tuple(removed)


def _status(settings: RegionSettings, state: RegionState, record: PidRecord | None) -> RegionStatus:
    pid = None if record is None else record.pid
    if state is not RegionState.RUNNING or record is None:
        return RegionStatus(
            state, pid, settings.endpoint_url, None, settings.state_dir, settings.log_file
        )
    return RegionStatus(
        state=state,
        pid=pid,
        endpoint_url=f"http://{record.host}:{record.port}",
        started_at=record.started_at,
        state_dir=settings.state_dir,
        log_file=settings.log_file,
        machines=tuple(MachineRuntime(settings.state_dir).list()),
        restored=restored_by_running_daemon(settings.state_dir, record.started_at),
    )


def _log_tail(log_file: Path) -> str:
    try:
        with log_file.open(encoding="utf-8", errors="replace") as log:
            return "".join(deque(log, maxlen=_LOG_TAIL_LINES)).rstrip()
    except OSError:
        return "(no log)"
