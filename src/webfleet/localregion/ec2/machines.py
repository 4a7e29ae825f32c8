"""EC2 instances as systemd-nspawn machines: launch, stop, start, terminate, and clean up after
a crashed daemon.

Each machine boots an overlay of its image's layers in its own network namespace (network.py)
and its own cgroup. Everything it uses is recorded under `<state_dir>/machines/<id>/` before it
is made, so a new process can find, check and remove it (`recover()`, `shutdown_all()`).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import ctypes
import dataclasses
import enum
import errno
import functools
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from webfleet.localregion.ec2.imds import InstanceRecord
from webfleet.localregion.ec2.network import (
    NETNS_DIR,
    VpcNetwork,
    instance_mac,
    instance_netns,
    remove_region_networks,
)
from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.mounts import (
    mounts_under,
    processes_using,
    remove_directory_safely,
    signal_quietly,
    umount,
    unmount_all_under,
)
from webfleet.localregion.runtime.processes import is_alive, wait_until

# --keep-unit without a host systemd would put every machine in the caller's cgroup (and leave
# it behind): each machine gets its own, in both hierarchies nspawn uses on this hybrid layout.
CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
CGROUP_PARENT = "webfleet"
# nspawn keeps per-machine state here; the host's /run is not a tmpfs, which nspawn complains of.
NSPAWN_RUN = Path("/run/systemd/nspawn")
STOP_GRACE_SECONDS = 20.0
KILL_WAIT_SECONDS = 10.0
# posix_spawn returns once the launcher shell runs; nspawn is exec'd a moment later.
EXEC_WAIT_SECONDS = 10.0
UNMOUNT_ATTEMPTS = 20
# EC2 reports running once the OS is up, not once boot jobs (cloud-init's user data) are done:
# "starting" is systemd up and working through them.
_RUNNING_STATES = ("starting", "running", "degraded")
_EXEC_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


class MachineState(enum.Enum):
    PENDING = "pending"  # nspawn started, not booted yet
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class MachineSpec:
    """What RunInstances decides about one instance."""

    instance_id: str
    layers: tuple[Path, ...]  # overlay lower dirs, topmost first, the base rootfs last
    private_ip: str
    prefixlen: int
    vpc_id: str
    subnet_cidrs: tuple[str, ...]
    availability_zone: str
    region: str
    ami_id: str
    instance_type: str = "t3.micro"
    user_data: bytes = b""
    ssh_key: tuple[str, str] | None = None  # (key pair name, OpenSSH public key)
    http_tokens: str = "optional"  # "required" refuses IMDSv1

    @property
    def hostname(self) -> str:
        return f"ip-{self.private_ip.replace('.', '-')}"

    @property
    def subnet_cidr(self) -> str:
        return str(ipaddress.ip_network(f"{self.private_ip}/{self.prefixlen}", strict=False))

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["layers"] = [str(layer) for layer in self.layers]
        data["user_data"] = base64.b64encode(self.user_data).decode()
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> MachineSpec:
        values = dict(data)
        values["layers"] = tuple(Path(str(p)) for p in _as_list(values["layers"]))
        values["subnet_cidrs"] = tuple(str(c) for c in _as_list(values["subnet_cidrs"]))
        values["user_data"] = base64.b64decode(str(values["user_data"]))
        key = values.get("ssh_key")
        values["ssh_key"] = None if key is None else tuple(str(k) for k in _as_list(key))
        return cls(**values)  # type: ignore[arg-type]


def _as_list(value: object) -> list[object]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list, got {value!r}")
    return list(value)


@dataclass(frozen=True)
class Machine:
    instance_id: str
    pid: int | None  # the systemd-nspawn process, while it runs
    state: MachineState
    private_ip: str
    started_at: float | None  # seconds since the epoch, of the last (re)start
    ami_id: str
    availability_zone: str

    @property
    def uptime_seconds(self) -> float | None:
        if self.started_at is None or self.state is not MachineState.RUNNING:
            return None
        return max(0.0, time.time() - self.started_at)


@dataclass
class _Record:
    """The JSON file of one machine: its spec and what runs for it."""

    spec: MachineSpec
    state: MachineState = MachineState.STOPPED
    pid: int | None = None
    started_at: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


class MachineRuntime:
    """The machines of one local region, all recorded under state_dir."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.absolute()
        self.machines_dir = self.state_dir / "machines"
        self._lock = threading.RLock()

    # --- public API -------------------------------------------------------------------------

    def launch(self, spec: MachineSpec) -> Machine:
        """Network, overlay, cgroup, then nspawn; returns at once (state pending)."""
        with self._lock:
            directory = self._dir(spec.instance_id)
            if (directory / "machine.json").exists():
                raise LocalRegionError(f"machine {spec.instance_id} exists already")
            for name in ("upper", "work", "merged"):
                (directory / name).mkdir(parents=True, exist_ok=True)
            record = _Record(spec)
            self._save(record)
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
            record = self._load(instance_id)
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
            record = self._load(instance_id)
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
                            record = self._load(instance_id)
                            if record.state is MachineState.PENDING:
                                record.state = MachineState.RUNNING
                                self._save(record)
                        return True
            time.sleep(0.2)
        return False

    def run_in(
        self, instance_id: str, command: Sequence[str], timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run command inside the machine (all its namespaces, a clean environment)."""
        leader = self._leader(self._load(instance_id))
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
            record = self._load(instance_id)
            record.state = MachineState.STOPPING
            self._save(record)
            self._halt([record])
            return self._machine(record)

    def terminate(self, instance_id: str) -> None:
        """Stop, then remove its overlay, network namespace and directories."""
        with self._lock:
            record = self._load(instance_id)
            self._halt([record])
            network = self._network(record.spec)
            network.detach(instance_id)
            network.unregister(record.spec.private_ip)
            _remove_tree(self._dir(instance_id))
            if not any(r.spec.vpc_id == record.spec.vpc_id for r in self._records()):
                network.teardown()

    def set_http_tokens(self, instance_id: str, http_tokens: str) -> None:
        """ModifyInstanceMetadataOptions: "required" refuses IMDSv1 from now on."""
        with self._lock:
            record = self._load(instance_id)
            record.spec = dataclasses.replace(record.spec, http_tokens=http_tokens)
            self._save(record)
            self._network(record.spec).register(_imds_record(record.spec))

    def upper_dir(self, instance_id: str) -> Path:
        """The machine's own layer: what CreateImage snapshots (consistent once stopped)."""
        return self._dir(instance_id) / "upper"

    def console_output(self, instance_id: str) -> str:
        path = self._dir(instance_id) / "console.log"
        try:
            return path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            raise LocalRegionError(f"no machine {instance_id}") from None

    def list(self) -> builtins.list[Machine]:
        return [self._machine(record) for record in self._records()]

    def spec(self, instance_id: str) -> MachineSpec:
        return self._load(instance_id).spec

    def specs(self) -> builtins.list[MachineSpec]:
        """Every recorded machine's spec, whatever its state (what still uses which layers)."""
        return [record.spec for record in self._records()]

    def recover(self) -> builtins.list[Machine]:
        """After a daemon restart: keep live machines, clean up the runtime bits of dead ones.

        A machine whose nspawn is gone may still hold things (its payload, nsenter children,
        the overlay): _halt finds them by what they use, not by the recorded pid.
        """
        with self._lock:
            for record in self._records():
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
            step("halting machines", lambda: self._halt(self._records(), orphans=True))
            if self.machines_dir.exists():
                step("removing machine directories", lambda: _remove_tree(self.machines_dir))
            step("removing networks", lambda: remove_region_networks(self.state_dir))
            shutil.rmtree(self.state_dir / "networks", ignore_errors=True)
            for root in CGROUP_ROOTS:
                with contextlib.suppress(OSError):
                    (root / CGROUP_PARENT).rmdir()  # only once no region uses it
            step("releasing the nspawn tmpfs", self._release_nspawn_run)
        if errors:
            raise LocalRegionError("shutdown left things behind: " + "; ".join(errors))

    # --- booting and halting ------------------------------------------------------------------

    def _boot(self, record: _Record) -> None:
        spec = record.spec
        directory = self._dir(spec.instance_id)
        merged = directory / "merged"
        if not mounts_under(merged):
            lower = ":".join(str(layer) for layer in spec.layers)
            options = (
                f"lowerdir={lower},upperdir={directory / 'upper'},workdir={directory / 'work'}"
            )
            _run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])
        self._claim_nspawn_run()
        cgroups = [root / CGROUP_PARENT / spec.instance_id for root in CGROUP_ROOTS]
        for cgroup in cgroups:
            if not cgroup.parent.parent.is_dir():
                raise LocalRegionError(
                    f"{cgroup.parent.parent} is missing: machines need the hybrid cgroup layout"
                )
            cgroup.mkdir(parents=True, exist_ok=True)
        netns = NETNS_DIR / instance_netns(self.state_dir, spec.instance_id)
        hypervisor = _write_platform_identity(directory, spec.instance_id)
        nspawn = [
            "systemd-nspawn", "--boot", "--keep-unit", "--register=no", "--quiet",
            f"--directory={merged}",
            f"--machine={spec.instance_id}",
            f"--hostname={spec.hostname}",
            f"--network-namespace-path={netns}",
            # With --private-network nspawn gives /sys a tmpfs holding the netns' sysfs, so a
            # /sys/hypervisor can be mounted (the plain read-only sysfs refuses the mount
            # point). It also grants CAP_NET_ADMIN, which the machines never had: dropped.
            "--private-network", "--drop-capability=CAP_NET_ADMIN",
            f"--bind-ro={hypervisor}:/sys/hypervisor",
            "--console=read-only", "--resolv-conf=off", "--timezone=off", "--link-journal=no",
        ]  # fmt: skip
        # The shell moves itself into the machine's cgroups, then becomes nspawn: nothing of the
        # machine ever runs in the caller's cgroup.
        script = (
            'for g in "$1" "$2"; do echo $$ > "$g/cgroup.procs" || exit 1; done; shift 2; exec "$@"'
        )
        command = ["/bin/sh", "-c", script, "sh", *map(str, cgroups), *nspawn]
        pid = os.posix_spawn(
            command[0],
            command,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(directory / "console.log"), _APPEND, 0o644),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,  # detached from the caller: the region manages it by pid
        )
        record.pid, record.state, record.started_at = pid, MachineState.PENDING, time.time()
        self._save(record)
        # Recognisable (cmdline naming the merged dir) or dead before launch() returns.
        if not wait_until(
            lambda: self._nspawn_pid(record) is not None or not is_alive(pid), EXEC_WAIT_SECONDS
        ):
            raise LocalRegionError(f"systemd-nspawn for {spec.instance_id} did not start")

    def _halt(self, records: Sequence[_Record], orphans: bool = False) -> None:
        """Stop all of them at once, then kill what is left of them, unmount and uncgroup.

        nspawn gets SIGTERM (it halts the machine cleanly) and a bounded wait. Then everything
        still using a machine gets SIGKILL: found by the recorded pid, any nspawn naming its
        directory, its cgroups, its netns and /proc/*/{root,cwd,cmdline} (the recorded pid alone
        misses half-launched machines and nsenter children). With orphans, directories under
        machines/ without a readable record (a crash mid-launch) are halted too.
        """
        ids = [r.spec.instance_id for r in records]
        if orphans and self.machines_dir.is_dir():
            ids += sorted(
                p.name for p in self.machines_dir.iterdir() if p.is_dir() and p.name not in ids
            )
        nspawns = [pid for i in ids for pid in self._users(i) if _is_nspawn(pid)]
        for pid in nspawns:
            signal_quietly(pid, signal.SIGTERM)
        wait_until(lambda: not any(is_alive(p) for p in nspawns), STOP_GRACE_SECONDS, 0.1)
        problems: builtins.list[str] = []
        for instance_id in ids:
            try:
                self._kill_users(instance_id)
                for root in CGROUP_ROOTS:
                    _remove_cgroup(root / CGROUP_PARENT / instance_id)
                merged = self._dir(instance_id) / "merged"
                if merged.exists():
                    _unmount(merged, functools.partial(self._kill_users, instance_id))
            except (OSError, LocalRegionError) as error:
                problems.append(f"{instance_id}: {error}")
        for record in records:
            record.pid, record.state = None, MachineState.STOPPED
            if (self._dir(record.spec.instance_id) / "machine.json").exists():
                self._save(record)
        if problems:
            raise LocalRegionError("; ".join(problems))

    def _users(self, instance_id: str) -> builtins.list[int]:
        """Every live process of the machine, however it got there (never this process)."""
        directory = self._dir(instance_id)
        pids: set[int] = set()
        with contextlib.suppress(LocalRegionError, OSError, ValueError, KeyError, TypeError):
            record = self._load(instance_id)
            if record.pid is not None and self._nspawn_pid(record) is not None:
                pids.add(record.pid)
        for root in CGROUP_ROOTS:
            pids.update(_cgroup_pids(root / CGROUP_PARENT / instance_id))
        netns = NETNS_DIR / instance_netns(self.state_dir, instance_id)
        pids.update(_netns_pids(netns))
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

    def _claim_nspawn_run(self) -> None:
        if str(NSPAWN_RUN) in map(str, mounts_under(NSPAWN_RUN.parent)):
            return
        NSPAWN_RUN.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", "tmpfs", "-o", "mode=0755", "webfleet-nspawn", str(NSPAWN_RUN)])

    def _release_nspawn_run(self) -> None:
        # Shared by every region on the host: only unmounted when no nspawn runs at all.
        if _any_process_named("systemd-nspawn"):
            return
        for point in mounts_under(NSPAWN_RUN):
            if point == NSPAWN_RUN and _mount_source(point) == "webfleet-nspawn":
                unmount_all_under(NSPAWN_RUN)
                break

    # --- records ------------------------------------------------------------------------------

    def _dir(self, instance_id: str) -> Path:
        if not instance_id or "/" in instance_id or instance_id.startswith("."):
            raise LocalRegionError(f"not an instance id: {instance_id!r}")
        return self.machines_dir / instance_id

    def _save(self, record: _Record) -> None:
        path = self._dir(record.spec.instance_id) / "machine.json"
        data = {
            "spec": record.spec.to_json(),
            "state": record.state.value,
            "pid": record.pid,
            "started_at": record.started_at,
        }
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        temporary.replace(path)

    def _load(self, instance_id: str) -> _Record:
        path = self._dir(instance_id) / "machine.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LocalRegionError(f"no machine {instance_id}") from None
        return _Record(
            spec=MachineSpec.from_json(data["spec"]),
            state=MachineState(data["state"]),
            pid=data["pid"],
            started_at=data["started_at"],
        )

    def _records(self) -> builtins.list[_Record]:
        if not self.machines_dir.is_dir():
            return []
        records: builtins.list[_Record] = []
        for path in sorted(self.machines_dir.glob("*/machine.json")):
            with contextlib.suppress(LocalRegionError, OSError, ValueError, KeyError, TypeError):
                records.append(self._load(path.parent.name))
        return records

    def _machine(self, record: _Record) -> Machine:
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

    def _network(self, spec: MachineSpec) -> VpcNetwork:
        # Subnets of the VPC known so far: from this spec and every machine of the same VPC.
        cidrs = dict.fromkeys(spec.subnet_cidrs)
        for other in self._records():
            if other.spec.vpc_id == spec.vpc_id:
                cidrs.update(dict.fromkeys(other.spec.subnet_cidrs))
        return VpcNetwork(self.state_dir, spec.vpc_id, list(cidrs))

    # --- processes ------------------------------------------------------------------------------

    def _nspawn_pid(self, record: _Record) -> int | None:
        """The recorded pid, only if it is alive and is nspawn on this machine's directory."""
        pid = record.pid
        if pid is None or not is_alive(pid):
            return None
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        merged = f"--directory={self._dir(record.spec.instance_id) / 'merged'}"
        return pid if os.fsencode(merged) in args else None

    def _leader(self, record: _Record) -> int | None:
        """The machine's PID 1 as the host sees it: the `systemd` child of nspawn."""
        pid = self._nspawn_pid(record)
        if pid is None:
            return None
        for child in _children(pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    return child
        return None


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


def ec2_platform_uuid(instance_id: str) -> str:
    """The machine's system UUID as EC2 has them: "ec2" first, the rest fixed by the instance."""
    digits = uuid.uuid5(uuid.NAMESPACE_URL, f"webfleet:instance/{instance_id}").hex
    return str(uuid.UUID("ec2" + digits[3:]))


def _write_platform_identity(directory: Path, instance_id: str) -> Path:
    """What the machine sees as /sys/hypervisor: a uuid starting "ec2", as on EC2's Xen hosts.

    cloud-init 22.4 asks EC2's metadata service for IMDSv2 tokens only once it identifies the
    platform as AWS, and in a container it ignores DMI: /sys/hypervisor/uuid is the one source it
    reads there. Without it, an instance requiring tokens gets no metadata or user data.
    """
    hypervisor = directory / "platform" / "hypervisor"
    hypervisor.mkdir(parents=True, exist_ok=True)
    (hypervisor / "uuid").write_text(ec2_platform_uuid(instance_id) + "\n", encoding="ascii")
    return hypervisor


def _run(command: Sequence[str]) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LocalRegionError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")


def _children(pid: int) -> list[int]:
    # No /proc/<pid>/task/<pid>/children on this kernel: scan parent pids.
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


def _any_process_named(name: str) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == name and is_alive(int(entry)):
                    return True
    return False


def _mount_source(point: Path) -> str | None:
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split(" ")
            if fields[4] == str(point):
                return fields[fields.index("-") + 2]
    return None


def _all_dead(pids: Sequence[int]) -> bool:
    return not any(is_alive(pid) for pid in pids)


def _is_nspawn(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "systemd-nspawn"
    except OSError:
        return False


def _netns_pids(netns: Path) -> list[int]:
    """Processes in the named network namespace (what `ip netns pids` reports)."""
    try:
        wanted = os.stat(netns)
    except OSError:
        return []
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                ns = os.stat(f"/proc/{entry}/ns/net")
                if (ns.st_dev, ns.st_ino) == (wanted.st_dev, wanted.st_ino):
                    found.append(int(entry))
    return found


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


def _cgroup_pids(cgroup: Path) -> list[int]:
    pids: list[int] = []
    if not cgroup.is_dir():
        return pids
    for procs in cgroup.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in procs.read_text().split()]
    return pids


def _remove_cgroup(cgroup: Path) -> None:
    """Kill whatever is left in the machine's cgroup (it is all the machine's), then remove it."""
    if not cgroup.is_dir():
        return
    if not wait_until(lambda: not _cgroup_pids(cgroup), 0.0):
        kill = cgroup / "cgroup.kill"
        if kill.exists():
            kill.write_text("1")
        else:
            for pid in _cgroup_pids(cgroup):
                signal_quietly(pid, signal.SIGKILL)
        if not wait_until(lambda: not _cgroup_pids(cgroup), KILL_WAIT_SECONDS):
            raise LocalRegionError(f"processes in {cgroup} survive SIGKILL")
    for directory in sorted(
        (p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        directory.rmdir()
    cgroup.rmdir()


def cpu_usage_usec(instance_id: str) -> int | None:
    """CPU time the machine has used so far (its cgroup's usage_usec), or None if it has none."""
    stat = CGROUP_ROOTS[0] / CGROUP_PARENT / instance_id / "cpu.stat"
    try:
        for line in stat.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value)
    except (OSError, ValueError):
        return None
    return None
