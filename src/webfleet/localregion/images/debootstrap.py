"""Running debootstrap, configuring its result, and removing what an aborted run leaves behind."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError

INSTALL_HINT = "apt-get install --no-install-recommends debootstrap (or run scripts/bootstrap)"

# debootstrap's stage lines -> one short progress message per stage (it logs every package).
_STAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"I: Retrieving (InRelease|Release|Packages)"), "retrieving the package index"),
    (re.compile(r"I: Resolving dependencies"), "resolving dependencies"),
    (re.compile(r"I: Retrieving "), "retrieving packages"),
    (re.compile(r"I: Extracting "), "extracting packages"),
    (re.compile(r"I: Installing core packages"), "installing core packages"),
    (re.compile(r"I: Unpacking "), "unpacking packages"),
    (re.compile(r"I: Configuring "), "configuring packages"),
    (re.compile(r"I: Base system installed successfully"), "base system installed"),
)

_PR_SET_PDEATHSIG = 1


class StageFilter:
    """Turns debootstrap's output into one message per stage."""

    def __init__(self, on_progress: Callable[[str], None]) -> None:
        self._on_progress = on_progress
        self._last: str | None = None

    def feed(self, line: str) -> None:
        for pattern, message in _STAGES:
            if pattern.match(line):
                if message != self._last:
                    self._last = message
                    self._on_progress(f"debootstrap: {message}")
                return


def find_debootstrap() -> str:
    # root's PATH has /usr/sbin, a user's or a venv's environment may not.
    found = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if found is None:
        raise LocalRegionError(f"debootstrap is not installed: {INSTALL_HINT}")
    return found


def _die_with_parent_in_own_session() -> None:
    # Own session: Ctrl-C reaches webfleet, which then stops the whole build on its own terms.
    # Parent-death signal: if webfleet is killed, debootstrap stops instead of running on.
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run_debootstrap(
    *,
    suite: str,
    architecture: str,
    mirror: str,
    packages: Sequence[str],
    target: Path,
    failure_log: Path,
    on_progress: Callable[[str], None],
) -> None:
    """debootstrap --variant=minbase into target; raises LocalRegionError with its last lines."""
    command = [
        find_debootstrap(),
        "--variant=minbase",
        f"--arch={architecture}",
        "--components=main",
        f"--include={','.join(packages)}",
        suite,
        str(target),
        mirror,
    ]
    env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    stages = StageFilter(on_progress)
    tail: collections.deque[str] = collections.deque(maxlen=25)
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=env,
        # preexec_fn, not start_new_session: the parent-death signal needs prctl in the child.
        preexec_fn=_die_with_parent_in_own_session,
    )
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            tail.append(line)
            stages.feed(line)
        returncode = process.wait()
    except BaseException:
        # Ctrl-C or any error while it runs: stop debootstrap and everything it started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if returncode != 0:
        # The target is deleted with the failed build; its detailed log is kept beside it.
        log = target / "debootstrap" / "debootstrap.log"
        hint = ""
        if log.exists():
            shutil.copyfile(log, failure_log)
            hint = f" (its full log: {failure_log})"
        raise LocalRegionError(
            f"debootstrap failed with exit code {returncode} building {suite} from {mirror}{hint}; "
            "check the mirror (WEBFLEET_DEBIAN_MIRROR) and the package list. Last output:\n"
            + "\n".join(tail)
        )


def configure_image(rootfs: Path, files: Sequence[tuple[str, str]]) -> None:
    """Write the image's configuration files and scrub what belongs to the building host."""
    for relative, content in files:
        path = rootfs / relative.lstrip("/")
        if path.is_symlink():
            path.unlink()  # never write through a link to somewhere else
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    # Each instance must make its own host keys and machine id at first boot, as on EC2.
    for key in (rootfs / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    dbus_id = rootfs / "var" / "lib" / "dbus" / "machine-id"
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    subprocess.run(
        ["chroot", str(rootfs), "apt-get", "clean"],
        check=True,
        capture_output=True,
        env={**os.environ, "LC_ALL": "C"},
    )


def installed_versions(rootfs: Path, packages: Sequence[str]) -> dict[str, str]:
    """Versions of the given packages from the image's dpkg status file."""
    versions: dict[str, str] = {}
    status = (rootfs / "var" / "lib" / "dpkg" / "status").read_text(encoding="utf-8")
    for block in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != " "
        )
        name = fields.get("Package", "")
        if name in packages and fields.get("Status", "").endswith(" installed"):
            versions[name] = fields.get("Version", "")
    return versions
