"""What the machine tests share: a run directory of their own, free subnets, leftovers.

Every run of a machine test module gets its own state directory under the module's RUNS folder
(names of netns and links are tagged with it) and subnets of a 10.x.0.0/16 that live only on the
bridge the run makes: whatever a killed run left behind can never collide with the next one,
which removes it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from webfleet.localregion.ec2.machines import MachineRuntime
from webfleet.localregion.ec2.network import VpcNetwork, instance_link, link_alias, netns_prefix
from webfleet.localregion.host.cgroups import machine_cgroups
from webfleet.localregion.host.mounts import mounts
from webfleet.localregion.host.procfs import processes

OWNER_FILE = "owner"


def free_subnets(second_octet: int, count: int = 1) -> int:
    """The third octet n of `count` consecutive /24s 10.<second_octet>.n.0 on no host route."""
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True
    )
    prefix = f"10.{second_octet}."
    used = {int(part.split(".")[2]) for part in routes.stdout.split() if part.startswith(prefix)}
    free = [n for n in range(2, 254, count) if all(n + k not in used for k in range(count))]
    return random.choice(free)


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(run: Path) -> bool:
    try:
        pid, started = (run / OWNER_FILE).read_text().split()
    except (OSError, ValueError):
        return False  # a run dies before it writes this only if it made nothing yet
    return _start_time(int(pid)) == started


def remove_dead_runs(runs: Path) -> None:
    """Earlier runs killed before their fixture cleaned up: remove all of theirs."""
    if not runs.is_dir():
        return
    for run in sorted(runs.glob("run-*")):
        if run.is_dir() and not _owner_alive(run):
            MachineRuntime(run / "region").shutdown_all()
            shutil.rmtree(run)


def run_state_dir(runs: Path, leftovers: Callable[[Path], list[str]]) -> Iterator[Path]:
    """For a module fixture: removes dead runs, yields the state directory of a new run owned by
    this process, and removes the run after unless `leftovers` finds something of it."""
    remove_dead_runs(runs)
    run = runs / f"run-{os.getpid()}-{random.getrandbits(32):08x}"
    run.mkdir(parents=True)
    (run / OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    yield run / "region"
    if not leftovers(run / "region"):
        shutil.rmtree(run, ignore_errors=True)


def machine_runtime(state_dir: Path) -> Iterator[MachineRuntime]:
    """For a module fixture: a runtime that shuts down whatever tests left, even on failure."""
    machines = MachineRuntime(state_dir)
    try:
        yield machines
    finally:
        machines.shutdown_all()


def leftovers(
    state_dir: Path,
    instance_ids: list[str],
    *,
    vpc_ids: Sequence[str] = (),
    machine_directories: bool = False,
) -> list[str]:
    """Mounts, netns, links, processes and cgroups of the region still on the host.

    vpc_ids: count the links named for these VPCs and the instances even if they lost their
    alias (other regions may run beside this one: their links are theirs).
    machine_directories: count anything left in the state directory's machines/ too.
    """
    found: list[str] = []
    root = str(state_dir)
    found += [f"mount {mount.point}" for mount in mounts() if root in str(mount.point)]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {n}" for n in netns.split() if n.startswith(netns_prefix(state_dir))]
    named = {instance_link(state_dir, i) for i in instance_ids} if vpc_ids else set()
    named.update(link for v in vpc_ids for link in VpcNetwork(state_dir, v, []).links)
    links = json.loads(subprocess.run(["ip", "-json", "link"], capture_output=True).stdout)
    found += [
        f"link {link['ifname']}"
        for link in links
        if link.get("ifalias") == link_alias(state_dir) or link["ifname"] in named
    ]
    for process in processes():
        cmdline = b" ".join(process.cmdline).decode(errors="replace")
        if root in cmdline:
            found.append(f"process {process.pid} {cmdline[:120]}")
    found += [
        f"cgroup {cgroup}" for i in instance_ids for cgroup in machine_cgroups(i) if cgroup.exists()
    ]
    machines = state_dir / "machines"
    if machine_directories and machines.exists() and any(machines.iterdir()):
        found.append("machine directories")
    return found
