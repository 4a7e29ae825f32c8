"""What the region knows of its machines, on disk: one `<machines_dir>/<id>/machine.json` each.

A record is written before anything it names is made (and again at every change of state), so
a new process can find every machine a crashed one left, running or half-made. Also the types
the machines are described by: the spec RunInstances decides, the state, and the `Machine`
the API reports.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import ipaddress
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError


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
class MachineRecord:
    """The JSON file of one machine: its spec and what runs for it."""

    spec: MachineSpec
    state: MachineState = MachineState.STOPPED
    pid: int | None = None
    started_at: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


class MachineRecords:
    """The records under machines_dir, each in the directory that holds the machine's files."""

    def __init__(self, machines_dir: Path) -> None:
        self.machines_dir = machines_dir

    def directory(self, instance_id: str) -> Path:
        # The id becomes a path: nothing that could leave machines_dir.
        if not instance_id or "/" in instance_id or instance_id.startswith("."):
            raise LocalRegionError(f"not an instance id: {instance_id!r}")
        return self.machines_dir / instance_id

    def exists(self, instance_id: str) -> bool:
        return (self.directory(instance_id) / "machine.json").exists()

    def save(self, record: MachineRecord) -> None:
        path = self.directory(record.spec.instance_id) / "machine.json"
        data = {
            "spec": record.spec.to_json(),
            "state": record.state.value,
            "pid": record.pid,
            "started_at": record.started_at,
        }
        # Written aside, then renamed: a crash never leaves half a record.
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        temporary.replace(path)

    def load(self, instance_id: str) -> MachineRecord:
        path = self.directory(instance_id) / "machine.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LocalRegionError(f"no machine {instance_id}") from None
        return MachineRecord(
            spec=MachineSpec.from_json(data["spec"]),
            state=MachineState(data["state"]),
            pid=data["pid"],
            started_at=data["started_at"],
        )

    def all(self) -> list[MachineRecord]:
        """Every readable record, by instance id."""
        if not self.machines_dir.is_dir():
            return []
        records: list[MachineRecord] = []
        for path in sorted(self.machines_dir.glob("*/machine.json")):
            with contextlib.suppress(LocalRegionError, OSError, ValueError, KeyError, TypeError):
                records.append(self.load(path.parent.name))
        return records

    def unrecorded_ids(self, recorded: list[str]) -> list[str]:
        """Directories under machines_dir not among recorded: machines a crash left half-made."""
        if not self.machines_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.machines_dir.iterdir() if p.is_dir() and p.name not in recorded
        )
