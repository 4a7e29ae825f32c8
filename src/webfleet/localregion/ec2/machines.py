"""EC2 instances as systemd-nspawn machines: launch, stop, start, terminate, and clean up after
a crashed daemon.

Each machine boots an overlay of its image's layers (nspawn.py) in its own network namespace
(network.py) and its own cgroups (host/cgroups.py). Everything it uses is recorded under
`<state_dir>/machines/<id>/` before it is made (machine_records.py), so a new process can find,
check and remove it (`recover()`, `shutdown_all()`). `MachineRuntime` is what the rest of the
region uses: it keeps the records, the network, nspawn and the cgroups in step.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import ctypes
import dataclasses
import errno
import functools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from webfleet.localregion.ec2 import nspawn
from webfleet.localregion.ec2.imds import InstanceRecord
from webfleet.localregion.ec2.machine_records import (
    Machine,
    MachineRecord,
    MachineRecords,
    MachineSpec,
    MachineState,
)
from webfleet.localregion.ec2.network import (
    NETNS_DIR,
    VpcNetwork,
    instance_mac,
    instance_netns,
    link_exists,
    remove_region_networks,
)
from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host import cgroups
from webfleet.localregion.host.mounts import (
    mounts_under,
    remove_directory_safely,
    umount,
    unmount_all_under,
)
from webfleet.localregion.host.procfs import (
    is_alive,
    processes_in_netns,
    processes_using,
    signal_quietly,
)
from webfleet.localregion.runtime.processes import wait_until

# The types of the facade's signatures, importable from here as before the records had a module.
__all__ = ["Machine", "MachineRuntime", "MachineSpec", "MachineState"]

STOP_GRACE_SECONDS = 20.0
KILL_WAIT_SECONDS = 10.0
# posix_spawn returns once the launcher shell runs; nspawn is exec'd a moment later.
EXEC_WAIT_SECONDS = 10.0
UNMOUNT_ATTEMPTS = 20
# EC2 reports running once the OS is up, not once boot jobs (cloud-init's user data) are done:
# "starting" is systemd up and working through them.
_RUNNING_STATES = ("starting", "running", "degraded")
_EXEC_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class MachineRuntime:
    """The machines of one local region, all recorded under state_dir."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.absolute()
        self.machines_dir = self.state_dir / "machines"
        self._records = MachineRecords(self.machines_dir)
        self._lock = threading.RLock()

    # --- public API -------------------------------------------------------------------------

    def launch(self, spec: MachineSpec) -> Machine:
        """Network, overlay, cgroup, then nspawn; returns at once (state pending)."""
        with self._lock:
            if self._records.exists(spec.instance_id):
                raise LocalRegionError(f"machine {spec.instance_id} exists already")
            directory = self._records.directory(spec.instance_id)
            for name in ("upper", "work", "merged"):
                (directory / name).mkdir(parents=True, exist_ok=True)
            record = MachineRecord(spec)
            self._records.save(record)
            (directory / "console.log").write_bytes(b"")
            network = self._network(spec)
            network.ensure()
            network.register(_imds_record(spec))
            network.attach(spec.instance_id, spec.private_ip, spec.prefixlen)
            self._boot(record)
            return self._machine(record)

    def start(self, instance_id: str) -> Machine:
        """Boot a stopped machine again on the same upper layer and address."""
        with self._lock:
            record = self._records.load(instance_id)
            if self._nspawn_pid(record) is not None:
                return self._machine(record)
            network = self._network(record.spec)
            network.ensure()
            network.register(_imds_record(record.spec))
            network.attach(instance_id, record.spec.private_ip, record.spec.prefixlen)
            self._boot(record)
            return self._machine(record)

    def wait_running(self, instance_id: str, timeout: float) -> bool:
        """True once systemd inside is up (starting, running or degraded); False on timeout or
        exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self._records.load(instance_id)
            if self._nspawn_pid(record) is None:
                # Between exec()s (launcher shell -> nspawn) /proc/PID/cmdline reads empty for a
                # moment: only a dead process means the machine is gone.
                if record.pid is None or not is_alive(record.pid):
                    return False
                time.sleep(0.05)
                continue
            if self._leader(record) is not None:
                with contextlib.suppress(LocalRegionError, subprocess.TimeoutExpired):
                    result = self.run_in(instance_id, ["systemctl", "is-system-running"], 5.0)
                    if result.stdout.strip() in _RUNNING_STATES:
                        with self._lock:
                            record = self._records.load(instance_id)
                            if record.state is MachineState.PENDING:
                                record.state = MachineState.RUNNING
                                self._records.save(record)
                        return True
            time.sleep(0.2)
        return False

    def run_in(
        self, instance_id: str, command: Sequence[str], timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run command inside the machine (all its namespaces, a clean environment)."""
        leader = self._leader(self._records.load(instance_id))
        if leader is None:
            raise LocalRegionError(f"machine {instance_id} is not running")
        return subprocess.run(
            ["nsenter", "-t", str(leader), "-a", "--", "env", "-i", _EXEC_PATH, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self, instance_id: str) -> Machine:
        """Halt the machine (SIGTERM to nspawn, then SIGKILL); keeps its upper dir and address."""
        with self._lock:
            record = self._records.load(instance_id)
            record.state = MachineState.STOPPING
            self._records.save(record)
            self._halt([record])
            return self._machine(record)

    def terminate(self, instance_id: str) -> None:
        """Stop, then remove its overlay, network namespace and directories."""
        with self._lock:
            record = self._records.load(instance_id)
            self._halt([record])
            network = self._network(record.spec)
            network.detach(instance_id)
            network.unregister(record.spec.private_ip)
            _remove_tree(self._records.directory(instance_id))
            if not any(r.spec.vpc_id == record.spec.vpc_id for r in self._records.all()):
                network.teardown()

    def set_http_tokens(self, instance_id: str, http_tokens: str) -> None:
        """ModifyInstanceMetadataOptions: "required" refuses IMDSv1 from now on."""
        with self._lock:
            record = self._records.load(instance_id)
            record.spec = dataclasses.replace(record.spec, http_tokens=http_tokens)
            self._records.save(record)
            self._network(record.spec).register(_imds_record(record.spec))

    def upper_dir(self, instance_id: str) -> Path:
        """The machine's own layer: what CreateImage snapshots (consistent once stopped)."""
        return self._records.directory(instance_id) / "upper"

    def console_output(self, instance_id: str) -> str:
        path = self._records.directory(instance_id) / "console.log"
        try:
            return path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            raise LocalRegionError(f"no machine {instance_id}") from None

    def list(self) -> builtins.list[Machine]:
        return [self._machine(record) for record in self._records.all()]

    def spec(self, instance_id: str) -> MachineSpec:
        return self._records.load(instance_id).spec

    def specs(self) -> builtins.list[MachineSpec]:
        """Every recorded machine's spec, whatever its state (what still uses which layers)."""
        return [record.spec for record in self._records.all()]

    def recover(self) -> builtins.list[Machine]:
        """After a daemon restart: keep live machines, clean up the runtime bits of dead ones.

        A machine whose nspawn is gone may still hold things (its payload, nsenter children,
        the overlay): _halt finds them by what they use, not by the recorded pid.
        """
        with self._lock:
            for record in self._records.all():
                if self._nspawn_pid(record) is None and (
                    record.state is not MachineState.STOPPED or self._users(record.spec.instance_id)
                ):
                    self._halt([record])
            return self.list()

    def shutdown_all(self) -> None:
        """Leave nothing: machines, mounts, cgroups, namespaces, bridges, metadata servers.

        Works from a new process after a crash, whatever state the machines were in. Every step
        runs even when an earlier one failed; the failures are raised together at the end.
        """
        errors: builtins.list[str] = []

        def step(what: str, action: Callable[[], object]) -> None:
            try:
                action()
            except (OSError, LocalRegionError, subprocess.SubprocessError, ValueError) as error:
                errors.append(f"{what}: {error}")

        with self._lock:
            step("halting machines", lambda: self._halt(self._records.all(), orphans=True))
            if self.machines_dir.exists():
                step("removing machine directories", lambda: _remove_tree(self.machines_dir))
            step("removing networks", lambda: remove_region_networks(self.state_dir))
            shutil.rmtree(self.state_dir / "networks", ignore_errors=True)
            cgroups.remove_cgroup_parent()
            step("releasing the nspawn tmpfs", nspawn.release_run_directory)
        if errors:
            raise LocalRegionError("shutdown left things behind: " + "; ".join(errors))

    # --- booting and halting ------------------------------------------------------------------

    def _boot(self, record: MachineRecord) -> None:
        spec = record.spec
        directory = self._records.directory(spec.instance_id)
        nspawn.mount_root(directory, spec.layers)
        nspawn.claim_run_directory()
        machine_cgroups = cgroups.create_machine_cgroups(spec.instance_id)
        netns = NETNS_DIR / instance_netns(self.state_dir, spec.instance_id)
        pid = nspawn.spawn(spec, directory, machine_cgroups, netns)
        record.pid, record.state, record.started_at = pid, MachineState.PENDING, time.time()
        self._records.save(record)
        # Recognisable (cmdline naming the merged dir) or dead before launch() returns.
        if not wait_until(
            lambda: self._nspawn_pid(record) is not None or not is_alive(pid), EXEC_WAIT_SECONDS
        ):
            raise LocalRegionError(f"systemd-nspawn for {spec.instance_id} did not start")

    def _halt(self, records: Sequence[MachineRecord], orphans: bool = False) -> None:
        """Stop all of them at once, then kill what is left of them, unmount and uncgroup.

        nspawn gets SIGTERM (it halts the machine cleanly) and a bounded wait. Then everything
        still using a machine gets SIGKILL: found by the recorded pid, any nspawn naming its
        directory, its cgroups, its netns and /proc/*/{root,cwd,cmdline} (the recorded pid alone
        misses half-launched machines and nsenter children). With orphans, directories under
        machines/ without a readable record (a crash mid-launch) are halted too.
        """
        ids = [r.spec.instance_id for r in records]
        if orphans:
            ids += self._records.unrecorded_ids(ids)
        nspawns = [pid for i in ids for pid in self._users(i) if nspawn.is_nspawn(pid)]
        for pid in nspawns:
            signal_quietly(pid, signal.SIGTERM)
        wait_until(lambda: not any(is_alive(p) for p in nspawns), STOP_GRACE_SECONDS, 0.1)
        problems: builtins.list[str] = []
        for instance_id in ids:
            try:
                self._kill_users(instance_id)
                cgroups.remove_machine_cgroups(instance_id)
                merged = self._records.directory(instance_id) / "merged"
                if merged.exists():
                    _unmount(merged, functools.partial(self._kill_users, instance_id))
            except (OSError, LocalRegionError) as error:
                problems.append(f"{instance_id}: {error}")
        for record in records:
            record.pid, record.state = None, MachineState.STOPPED
            if self._records.exists(record.spec.instance_id):
                self._records.save(record)
        if problems:
            raise LocalRegionError("; ".join(problems))

    def _users(self, instance_id: str) -> builtins.list[int]:
        """Every live process of the machine, however it got there (never this process)."""
        directory = self._records.directory(instance_id)
        pids: set[int] = set()
        with contextlib.suppress(LocalRegionError, OSError, ValueError, KeyError, TypeError):
            record = self._records.load(instance_id)
            if record.pid is not None and self._nspawn_pid(record) is not None:
                pids.add(record.pid)
        pids.update(cgroups.machine_cgroup_pids(instance_id))
        pids.update(processes_in_netns(NETNS_DIR / instance_netns(self.state_dir, instance_id)))
        pids.update(processes_using(directory))
        pids.discard(os.getpid())
        return sorted(pid for pid in pids if is_alive(pid))

    def _kill_users(self, instance_id: str) -> None:
        """SIGKILL every process of the machine, again until none is left (bounded)."""
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while True:
            pids = self._users(instance_id)
            if not pids:
                return
            if time.monotonic() >= deadline:
                raise LocalRegionError(f"processes {pids} of {instance_id} survive SIGKILL")
            for pid in pids:
                signal_quietly(pid, signal.SIGKILL)
            wait_until(functools.partial(_all_dead, pids), 1.0)

    # --- what the records say, checked against the host ------------------------------------------

    def _nspawn_pid(self, record: MachineRecord) -> int | None:
        """The recorded pid, only if it is alive and is nspawn on this machine's directory."""
        return nspawn.nspawn_pid(record.pid, self._records.directory(record.spec.instance_id))

    def _leader(self, record: MachineRecord) -> int | None:
        pid = self._nspawn_pid(record)
        return None if pid is None else nspawn.leader(pid)

    def _machine(self, record: MachineRecord) -> Machine:
        pid = self._nspawn_pid(record)
        state = record.state
        if pid is None and state in (MachineState.PENDING, MachineState.RUNNING):
            state = MachineState.STOPPED  # died under us (crash, or halted from inside)
        return Machine(
            record.spec.instance_id,
            pid,
            state,
            record.spec.private_ip,
            record.started_at,
            record.spec.ami_id,
            record.spec.availability_zone,
        )

    def repair_networks(self) -> builtins.list[str]:
        """Restart the metadata service (and bridge) of a VPC with running machines where it
        died; what was repaired, a line each. EC2's metadata service does not go away."""
        repaired = []
        with self._lock:
            running = [
                r
                for r in self._records.all()
                if r.state is MachineState.RUNNING and self._nspawn_pid(r) is not None
            ]
            for vpc_id, spec in {r.spec.vpc_id: r.spec for r in running}.items():
                network = self._network(spec)
                bridge_lost = not link_exists(network.bridge)
                if network.imds_pid() is None or bridge_lost:
                    network.ensure()
                    # A new bridge has no ports: put the machines of the VPC back on it.
                    for record in running if bridge_lost else []:
                        if record.spec.vpc_id == vpc_id:
                            network.attach(
                                record.spec.instance_id,
                                record.spec.private_ip,
                                record.spec.prefixlen,
                            )
                    repaired.append(f"{vpc_id}: restarted its metadata service and bridge")
        return repaired

    def _network(self, spec: MachineSpec) -> VpcNetwork:
        # Subnets of the VPC known so far: from this spec and every machine of the same VPC.
        cidrs = dict.fromkeys(spec.subnet_cidrs)
        for other in self._records.all():
            if other.spec.vpc_id == spec.vpc_id:
                cidrs.update(dict.fromkeys(other.spec.subnet_cidrs))
        return VpcNetwork(self.state_dir, spec.vpc_id, list(cidrs))


def _imds_record(spec: MachineSpec) -> InstanceRecord:
    return InstanceRecord(
        instance_id=spec.instance_id,
        private_ip=spec.private_ip,
        prefixlen=spec.prefixlen,
        mac=instance_mac(spec.instance_id),
        vpc_id=spec.vpc_id,
        subnet_cidr=spec.subnet_cidr,
        availability_zone=spec.availability_zone,
        region=spec.region,
        ami_id=spec.ami_id,
        instance_type=spec.instance_type,
        http_tokens=spec.http_tokens,
        user_data_b64=base64.b64encode(spec.user_data).decode(),
        public_keys=[spec.ssh_key] if spec.ssh_key else [],
    )


def _all_dead(pids: Sequence[int]) -> bool:
    return not any(is_alive(pid) for pid in pids)


def _unmount(merged: Path, kill_users: Callable[[], None]) -> None:
    """Unmount everything at or under merged: retried while its users die, lazily at last."""
    for _ in range(UNMOUNT_ATTEMPTS):
        points = mounts_under(merged)
        if not points:
            return
        for point in points:
            if umount(point) != 0 and ctypes.get_errno() == errno.EBUSY:
                kill_users()
        time.sleep(0.1)
    unmount_all_under(merged)  # detaches what is still busy (MNT_DETACH) or raises


def _remove_tree(directory: Path) -> None:
    """remove_directory_safely, retried: a mount namespace of a dying machine can keep a mount point
    busy (EBUSY on rmdir) for a moment after its processes were killed."""
    for attempt in range(UNMOUNT_ATTEMPTS):
        try:
            remove_directory_safely(directory)
            return
        except OSError as error:
            if error.errno != errno.EBUSY or attempt == UNMOUNT_ATTEMPTS - 1:
                raise
            time.sleep(0.25)
