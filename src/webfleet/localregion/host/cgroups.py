"""The machines' cgroups: one per machine, under webfleet/ in both hierarchies nspawn uses.

--keep-unit without a host systemd would put every machine in the caller's cgroup (and leave
it behind): each machine gets its own, in both hierarchies of this hybrid layout, so its
processes can be found and killed by cgroup and its CPU time read from it.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.procfs import signal_quietly

CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
CGROUP_PARENT = "webfleet"
KILL_WAIT_SECONDS = 10.0


def machine_cgroups(instance_id: str) -> tuple[Path, ...]:
    """The machine's cgroup in each hierarchy (whether they exist or not)."""
    return tuple(root / CGROUP_PARENT / instance_id for root in CGROUP_ROOTS)


def create_machine_cgroups(instance_id: str) -> tuple[Path, ...]:
    cgroups = machine_cgroups(instance_id)
    for cgroup in cgroups:
        if not cgroup.parent.parent.is_dir():
            raise LocalRegionError(
                f"{cgroup.parent.parent} is missing: machines need the hybrid cgroup layout"
            )
        cgroup.mkdir(parents=True, exist_ok=True)
    return cgroups


def machine_cgroup_pids(instance_id: str) -> list[int]:
    """The processes in the machine's cgroups (and their children cgroups)."""
    return [pid for cgroup in machine_cgroups(instance_id) for pid in cgroup_pids(cgroup)]


def remove_machine_cgroups(instance_id: str) -> None:
    for cgroup in machine_cgroups(instance_id):
        remove_cgroup(cgroup)


def remove_cgroup_parent() -> None:
    """The webfleet/ cgroups, only once no region has a machine in them."""
    for root in CGROUP_ROOTS:
        with contextlib.suppress(OSError):
            (root / CGROUP_PARENT).rmdir()


def cgroup_pids(cgroup: Path) -> list[int]:
    pids: list[int] = []
    if not cgroup.is_dir():
        return pids
    for procs in cgroup.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in procs.read_text().split()]
    return pids


def remove_cgroup(cgroup: Path) -> None:
    """Kill whatever is left in the machine's cgroup (it is all the machine's), then remove it."""
    if not cgroup.is_dir():
        return
    if cgroup_pids(cgroup):
        kill = cgroup / "cgroup.kill"
        if kill.exists():
            kill.write_text("1")
        else:
            for pid in cgroup_pids(cgroup):
                signal_quietly(pid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while cgroup_pids(cgroup):
            if time.monotonic() >= deadline:
                raise LocalRegionError(f"processes in {cgroup} survive SIGKILL")
            time.sleep(0.05)
    for directory in sorted(
        (p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        directory.rmdir()
    cgroup.rmdir()


def cpu_usage_usec(instance_id: str) -> int | None:
    """CPU time the machine has used so far (its cgroup's usage_usec), or None if it has none."""
    stat = machine_cgroups(instance_id)[0] / "cpu.stat"
    try:
        for line in stat.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value)
    except (OSError, ValueError):
        return None
    return None
