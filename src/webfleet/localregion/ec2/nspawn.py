"""systemd-nspawn on the host, for one machine at a time: the overlay root it boots, the command
that boots it inside the machine's cgroups and network namespace with the EC2 identity it
sees, recognising its process and the machine's PID 1 later, and the tmpfs every nspawn on the
host keeps its state in.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

from webfleet.localregion.ec2.machine_records import MachineSpec
from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.mounts import mount_source, mounts_under, unmount_all_under
from webfleet.localregion.host.procfs import (
    Process,
    any_process_named,
    children,
    is_alive,
    spawn_detached,
)

# nspawn keeps per-machine state here; the host's /run is not a tmpfs, which nspawn complains of.
NSPAWN_RUN = Path("/run/systemd/nspawn")
_NSPAWN_RUN_SOURCE = "webfleet-nspawn"


def mount_root(directory: Path, layers: Sequence[Path]) -> Path:
    """The machine's root: its image's layers under its own upper dir, at directory/merged."""
    merged = directory / "merged"
    if not mounts_under(merged):
        lower = ":".join(str(layer) for layer in layers)
        options = f"lowerdir={lower},upperdir={directory / 'upper'},workdir={directory / 'work'}"
        _run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])
    return merged


def claim_run_directory() -> None:
    if str(NSPAWN_RUN) in map(str, mounts_under(NSPAWN_RUN.parent)):
        return
    NSPAWN_RUN.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", "mode=0755", _NSPAWN_RUN_SOURCE, str(NSPAWN_RUN)])


def release_run_directory() -> None:
    # Shared by every region on the host: only unmounted when no nspawn runs at all.
    if any_process_named("systemd-nspawn"):
        return
    for point in mounts_under(NSPAWN_RUN):
        if point == NSPAWN_RUN and mount_source(point) == _NSPAWN_RUN_SOURCE:
            unmount_all_under(NSPAWN_RUN)
            break


def spawn(spec: MachineSpec, directory: Path, cgroups: Sequence[Path], netns: Path) -> int:
    """Boot the machine mounted at directory/merged; returns the pid that becomes nspawn."""
    merged = directory / "merged"
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
    # Detached from the caller: the region manages it by pid.
    return spawn_detached(command, directory / "console.log")


def nspawn_pid(pid: int | None, directory: Path) -> int | None:
    """pid, only if it is alive and is nspawn on the machine at directory (pids are reused)."""
    if pid is None or not is_alive(pid):
        return None
    merged = f"--directory={directory / 'merged'}"
    return pid if os.fsencode(merged) in Process(pid).cmdline else None


def leader(nspawn: int) -> int | None:
    """The machine's PID 1 as the host sees it: the `systemd` child of nspawn."""
    return next((child for child in children(nspawn) if Process(child).comm == "systemd"), None)


def is_nspawn(pid: int) -> bool:
    return Process(pid).comm == "systemd-nspawn"


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
