"""The host's process and mount tables: who uses a directory, what is mounted under it, and
taking both away before the directory is deleted.

Shared by everything that leaves processes and mounts in a directory of its own: debootstrap
builds (chroots, /proc and /sys mounts) and machines (nspawn, overlays).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import time
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError

MNT_DETACH = 2
_LIBC = ctypes.CDLL(None, use_errno=True)


def signal_quietly(pid: int, signum: signal.Signals) -> None:
    """Send a signal; a process already gone is what every signal we send aims for."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def processes_using(directory: Path) -> list[int]:
    """Processes (never this one) whose root or cwd is at or under directory, or whose command
    line names it."""
    # readlink of /proc/<pid>/{root,cwd} gives resolved paths; a command line names it as given.
    roots = tuple({str(directory.resolve()), str(directory.absolute())})
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        proc = Path("/proc") / entry
        with contextlib.suppress(OSError):  # gone meanwhile, or a kernel thread
            links = [os.readlink(proc / "root"), os.readlink(proc / "cwd")]
            args = [
                a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")
            ]
            if any(_within(link, roots) for link in links) or any(
                root in arg for arg in args for root in roots
            ):
                found.append(int(entry))
    return found


def kill_processes_using(directory: Path) -> None:
    """SIGKILL every process using directory, again until none is left (bounded)."""
    for _ in range(50):
        pids = processes_using(directory)
        if not pids:
            return
        for pid in pids:
            signal_quietly(pid, signal.SIGKILL)
        time.sleep(0.1)
    raise LocalRegionError(f"processes using {directory} do not stop")


def _unescape_mount_path(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below directory, deepest first (the order to unmount them in)."""
    root = str(directory.resolve())
    found: list[Path] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = _unescape_mount_path(line.split(" ")[4])
            if _within(point, (root,)):
                found.append(Path(point))
    return sorted(set(found), key=lambda path: len(path.parts), reverse=True)


def umount(point: Path, flags: int = 0) -> int:
    """umount2(2); 0 on success, else -1 with the reason in ctypes.get_errno()."""
    return int(_LIBC.umount2(os.fsencode(point), flags))


def unmount_all_under(directory: Path) -> None:
    for point in mounts_under(directory):
        # Busy: detach it instead, so it is unreachable from the tree before that is deleted.
        if umount(point) != 0 and umount(point, MNT_DETACH) != 0:
            error = ctypes.get_errno()
            raise LocalRegionError(f"cannot unmount {point}: {os.strerror(error)}")


def remove_directory_safely(directory: Path) -> None:
    """Stop the directory's processes, unmount its mounts, then delete it; never deletes
    through a mount."""
    if not directory.exists():
        return
    kill_processes_using(directory)
    unmount_all_under(directory)
    left = mounts_under(directory)
    if left:
        # debootstrap can bind-mount host /dev nodes: deleting through them would harm the host.
        raise LocalRegionError(
            f"not removing {directory}: still mounted at {', '.join(map(str, left))}"
        )
    shutil.rmtree(directory)
