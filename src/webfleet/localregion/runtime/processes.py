"""Starting, recognising and stopping the region's processes (the daemon and its helpers)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.procfs import (
    Process,
    is_alive,
    processes,
    signal_quietly,
    spawn_detached,
)
from webfleet.localregion.runtime.settings import RegionSettings

MODULE = "webfleet.localregion"


def serve_command(settings: RegionSettings) -> list[str]:
    return [
        sys.executable,
        "-m",
        MODULE,
        "serve",
        "--state-dir",
        str(settings.state_dir),
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--image-cache",
        str(settings.image_cache),
        "--default-vpc-cidr",
        settings.default_vpc_cidr,
    ]


def spawn_daemon(settings: RegionSettings) -> int:
    """Start `serve` in its own session, stdin from /dev/null, output appended to the log (its
    caller has made the state directory, private)."""
    command = serve_command(settings)
    return spawn_detached(command, settings.log_file)


def is_region_daemon(pid: int, state_dir: Path) -> bool:
    """True only for a live `serve` process of this state directory: never signal anything else."""
    if not is_alive(pid):
        return False
    args = [arg.decode(errors="replace") for arg in Process(pid).cmdline]
    return MODULE in args and "serve" in args and str(state_dir) in args


def stop_process(
    pid: int, grace_seconds: float, kill_seconds: float = 5.0, name: str = "process"
) -> bool:
    """SIGTERM, then SIGKILL after the grace period; True when SIGKILL was needed."""
    signal_quietly(pid, signal.SIGTERM)
    if wait_until(lambda: not is_alive(pid), grace_seconds):
        return False
    signal_quietly(pid, signal.SIGKILL)
    if wait_until(lambda: not is_alive(pid), kill_seconds):
        return True
    raise LocalRegionError(
        f"The {name} (pid {pid}) survived SIGKILL for {kill_seconds:.0f} s; it is probably "
        f"stuck in the kernel. Check `ps -o pid,stat,wchan -p {pid}` and retry `down`."
    )


def stop_daemon(pid: int, grace_seconds: float) -> bool:
    """Stop the region's daemon: stop_process with its name in the error."""
    return stop_process(pid, grace_seconds, name="local region daemon")


def wait_until(
    condition: Callable[[], bool], timeout_seconds: float, interval: float = 0.05
) -> bool:
    """Poll condition until it holds or the timeout passes; returns whether it held."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def live_pid_from_file(pid_file: Path, argument: Path) -> int | None:
    """The pid in pid_file (its first word), only if that process lives and its command line
    names argument: a pid file outlives its process, and pids are reused."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if os.fsencode(argument) not in Process(pid).cmdline or not is_alive(pid):
        return None
    return pid


def processes_named_with_files_under(name: str, directory: Path) -> list[int]:
    """Live processes (never this one) with an argument called name (a program or a module)
    and an argument naming a path under directory: found by command line when no pid file is
    left to say so (a crash between spawn and writing it)."""
    prefix = os.fsencode(str(directory.absolute())) + b"/"
    wanted = os.fsencode(name)
    found = [
        process.pid
        for process in processes()
        if any(os.path.basename(arg) == wanted for arg in process.cmdline)
        and any(arg.startswith(prefix) for arg in process.cmdline)
    ]
    return [pid for pid in found if is_alive(pid)]
