"""The host's mount table (/proc/self/mountinfo, parsed only here): what is mounted where and
from what, and deleting a directory safely: its processes killed (procfs.py) and everything
under it unmounted first.

Shared by everything that leaves processes and mounts in a directory of its own: debootstrap
builds (chroots, /proc and /sys mounts) and machines (nspawn, overlays).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.procfs import kill_processes_using

MNT_DETACH = 2
MOUNTINFO = Path("/proc/self/mountinfo")
_LIBC = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo: where, what kind, and from what (a device, or the name given
    to mount(8), such as `webfleet-nspawn`)."""

    point: Path
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as octal escapes (\040).
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo_line(line: str) -> Mount:
    """`36 35 98:0 /root /point rw,noatime master:1 - ext3 /dev/root rw`: after the mount
    point come options and any number of optional fields, ended by a lone "-"."""
    fields = line.rstrip("\n").split(" ")
    separator = fields.index("-", 6)
    return Mount(
        point=Path(_unescape(fields[4])),
        fstype=_unescape(fields[separator + 1]),
        source=_unescape(fields[separator + 2]),
    )


def mounts(mountinfo: Path = MOUNTINFO) -> list[Mount]:
    """Every mount this process sees, in mount order."""
    with open(mountinfo, encoding="utf-8") as lines:
        return [parse_mountinfo_line(line) for line in lines if line.strip()]


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below directory, deepest first (the order to unmount them in)."""
    root = str(directory.resolve())
    found = {
        mount.point
        for mount in mounts()
        if str(mount.point) == root or str(mount.point).startswith(root + "/")
    }
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def mount_source(point: Path) -> str | None:
    """What is mounted at point (the first mount there), or None if nothing is."""
    return next((mount.source for mount in mounts() if mount.point == point), None)


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
