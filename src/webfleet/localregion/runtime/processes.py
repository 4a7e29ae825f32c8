"""Starting, recognising and stopping the region's processes (the daemon and its helpers)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.mounts import signal_quietly
from webfleet.localregion.runtime.settings import RegionSettings

MODULE = "webfleet.localregion"
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


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
    ]


def spawn_daemon(settings: RegionSettings) -> int:
    """Start `serve` in its own session, stdin from /dev/null, output appended to the log."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    command = serve_command(settings)
    # posix_spawn, not Popen: the daemon outlives the caller's interest in it, and a dropped
    # Popen warns while its child runs. is_alive() reaps it if it dies while we still run.
    return os.posix_spawn(
        command[0],
        command,
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(settings.log_file), _APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


def is_alive(pid: int) -> bool:
    """True until every thread of the process has exited (zombies count as exited)."""
    _reap_if_our_child(pid)
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    # Not just the leader: a killed multi-threaded process shows its leader as a zombie while
    # other threads still exit and hold its sockets, so the API port is not free yet.
    return any(_thread_running(thread / "stat") for thread in threads)


def is_region_daemon(pid: int, state_dir: Path) -> bool:
    """True only for a live `serve` process of this state directory: never signal anything else."""
    if not is_alive(pid):
        return False
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    args = [arg.decode(errors="replace") for arg in raw.split(b"\0")]
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


def _thread_running(stat_file: Path) -> bool:
    try:
        stat = stat_file.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _reap_if_our_child(pid: int) -> None:
    # A daemon started by this very process lingers as our zombie until waited for.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def live_pid_from_file(pid_file: Path, argument: Path) -> int | None:
    """The pid in pid_file (its first word), only if that process lives and its command line
    names argument: a pid file outlives its process, and pids are reused."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").split()[0])
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    if os.fsencode(argument) not in args or not is_alive(pid):
        return None
    return pid


def processes_named_with_files_under(name: str, directory: Path) -> list[int]:
    """Live processes (never this one) with an argument called name (a program or a module)
    and an argument naming a path under directory: found by command line when no pid file is
    left to say so (a crash between spawn and writing it)."""
    prefix = os.fsencode(str(directory.absolute())) + b"/"
    wanted = os.fsencode(name)
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if any(os.path.basename(arg) == wanted for arg in args) and any(
                    arg.startswith(prefix) for arg in args
                ):
                    found.append(int(entry))
    return [pid for pid in found if is_alive(pid)]
