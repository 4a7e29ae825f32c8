"""VPC networks for local machines: a bridge per VPC, a network namespace per instance, and the
VPC's metadata service in a namespace of its own holding 169.254.169.254.

169.254.169.254 never goes on the host: the host routes it out of its real interface, where
something real answers. Instances get no default route: only their VPC's subnets (on the bridge,
whose .1 addresses are the host's) and the metadata address are reachable.

Every name carries a tag derived from the state directory, and every link an alias naming it, so
a new process can find and remove what a crashed one left without touching another region's.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from webfleet.localregion.ec2.imds import InstanceRecord, read_registry, write_registry
from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.procfs import (
    is_alive,
    processes_in_netns,
    signal_quietly,
    spawn_detached,
)
from webfleet.localregion.runtime.processes import (
    live_pid_from_file,
    processes_named_with_files_under,
    stop_process,
    wait_until,
)

IMDS_ADDRESS = "169.254.169.254"
NETNS_DIR = Path("/run/netns")
_IMDS_START_SECONDS = 10.0
_KILL_WAIT_SECONDS = 5.0


def _short_hash(*parts: str, length: int) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def region_tag(state_dir: Path) -> str:
    """Four hex digits naming one state directory's region in netns names and link aliases."""
    return _short_hash(str(state_dir.resolve()), length=4)


def link_alias(state_dir: Path) -> str:
    return f"webfleet-region-{region_tag(state_dir)}"


def netns_prefix(state_dir: Path) -> str:
    return f"wf-{region_tag(state_dir)}-"


def instance_netns(state_dir: Path, instance_id: str) -> str:
    return f"{netns_prefix(state_dir)}{instance_id}"


def instance_link(state_dir: Path, instance_id: str) -> str:
    """The host end of an instance's veth."""
    return f"wf-v-{_short_hash(region_tag(state_dir), instance_id, length=8)}"


def instance_mac(instance_id: str) -> str:
    # Locally administered, stable per instance: IMDS and the interface agree on it.
    digest = _short_hash(instance_id, length=10)
    return "02:" + ":".join(digest[i : i + 2] for i in range(0, 10, 2))


SYS_CLASS_NET = Path("/sys/class/net")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LocalRegionError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def link_exists(name: str, netns: str | None = None) -> bool:
    if netns is None:
        # This process's own namespace: sysfs lists its links, with no `ip` to start (the status
        # checks ask for every running instance every couple of seconds).
        return (SYS_CLASS_NET / name).exists()
    return ip("-n", netns, "link", "show", "dev", name, check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def ensure_netns(name: str) -> None:
    if not netns_exists(name):
        ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")


def delete_netns(name: str) -> None:
    """Kill whatever still runs in the namespace, then delete it (its veths go with it)."""
    if not netns_exists(name):
        return
    pids = processes_in_netns(NETNS_DIR / name)
    for pid in pids:
        signal_quietly(pid, signal.SIGKILL)
    wait_until(lambda: not any(is_alive(pid) for pid in pids), _KILL_WAIT_SECONDS)
    ip("netns", "del", name, check=False)


def _add_veth(host_end: str, netns: str, alias: str, mac: str | None = None) -> None:
    """A veth pair: host_end in the host netns, `eth0` in netns. Kept if it exists."""
    if not link_exists(host_end):
        ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", netns)
    ip("link", "set", host_end, "alias", alias)
    if mac is not None:
        ip("-n", netns, "link", "set", "eth0", "address", mac)
    ip("-n", netns, "link", "set", "eth0", "up")


class VpcNetwork:
    """One VPC on this host: its bridge, its metadata service and its instances' namespaces."""

    def __init__(self, state_dir: Path, vpc_id: str, subnet_cidrs: Sequence[str]) -> None:
        self.state_dir = state_dir
        self.vpc_id = vpc_id
        self.subnets = [ipaddress.ip_network(cidr) for cidr in subnet_cidrs]
        tag = region_tag(state_dir)
        vpc_hash = _short_hash(tag, vpc_id, length=6)
        self.alias = link_alias(state_dir)
        self.bridge = f"wf-br-{vpc_hash}"
        self.imds_netns = f"{netns_prefix(state_dir)}imds-{vpc_hash}"
        self._imds_veth = f"wf-vm-{vpc_hash}"
        self.directory = state_dir / "networks" / vpc_id
        self.registry = self.directory / "imds.json"
        self._imds_pid_file = self.directory / "imds.pid"
        self._imds_ready = self.directory / "imds.ready"

    @property
    def links(self) -> tuple[str, str]:
        """The host links of the VPC itself: its bridge and its metadata service's veth."""
        return self.bridge, self._imds_veth

    def ensure(self) -> None:
        """Create the bridge, gateway addresses and metadata service, where missing."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # Recorded first: a crash from here on leaves something recover() knows about.
        (self.directory / "network.json").write_text(
            json.dumps({"vpc_id": self.vpc_id, "subnets": [str(s) for s in self.subnets]}),
            encoding="utf-8",
        )
        self._check_subnets_are_free()
        if not link_exists(self.bridge):
            ip("link", "add", self.bridge, "type", "bridge")
        ip("link", "set", self.bridge, "alias", self.alias)
        for subnet in self.subnets:
            gateway = next(subnet.hosts())
            ip("address", "replace", f"{gateway}/{subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        self._ensure_imds()

    def _check_subnets_are_free(self) -> None:
        """Refuse a subnet the host already routes elsewhere (another region's VPC with the same
        CIDR, or a real network): its machines would be unreachable, or worse, reach that."""
        for subnet in self.subnets:
            routes = json.loads(ip("-json", "route", "show", "exact", str(subnet)).stdout or "[]")
            for route in routes:
                device = route.get("dev")
                if device and device != self.bridge:
                    raise LocalRegionError(
                        f"subnet {subnet} of {self.vpc_id} is already routed via {device} on "
                        "this host (another local region running a VPC with the same CIDR?): "
                        "stop that region, or use another CIDR"
                    )

    def _ensure_imds(self) -> None:
        ensure_netns(self.imds_netns)
        _add_veth(self._imds_veth, self.imds_netns, self.alias)
        ip("link", "set", self._imds_veth, "master", self.bridge, "up")
        ip("-n", self.imds_netns, "address", "replace", f"{IMDS_ADDRESS}/32", "dev", "eth0")
        for subnet in self.subnets:
            ip("-n", self.imds_netns, "route", "replace", str(subnet), "dev", "eth0")
        if self.imds_pid() is None:
            self._start_imds()

    def _start_imds(self) -> None:
        if not self.registry.exists():
            write_registry(self.registry, {})
        self._imds_ready.unlink(missing_ok=True)
        command = [
            "ip", "netns", "exec", self.imds_netns,
            sys.executable, "-m", "webfleet.localregion.ec2.imds",
            "--registry", str(self.registry),
            "--bind", f"{IMDS_ADDRESS}:80",
            "--ready-file", str(self._imds_ready),
        ]  # fmt: skip
        # `ip netns exec` execs, so the pid is the server's. Own session: it outlives a caller's
        # Ctrl-C and is stopped by pid.
        pid = spawn_detached(command, self.directory / "imds.log")
        self._imds_pid_file.write_text(f"{pid}\n", encoding="utf-8")
        if not wait_until(self._imds_ready.exists, _IMDS_START_SECONDS):
            raise LocalRegionError(
                f"the metadata service of {self.vpc_id} did not start within "
                f"{_IMDS_START_SECONDS:.0f} s: see {self.directory / 'imds.log'}"
            )

    def imds_pid(self) -> int | None:
        """The live metadata server of this VPC, checked by its command line naming our file."""
        return live_pid_from_file(self._imds_pid_file, self.registry)

    def register(self, record: InstanceRecord) -> None:
        records = read_registry(self.registry)
        records[record.private_ip] = record
        write_registry(self.registry, records)

    def unregister(self, private_ip: str) -> None:
        records = read_registry(self.registry)
        if records.pop(private_ip, None) is not None:
            write_registry(self.registry, records)

    def attach(self, instance_id: str, private_ip: str, prefixlen: int) -> str:
        """The instance's netns on the bridge, holding private_ip; returns the netns name."""
        netns = instance_netns(self.state_dir, instance_id)
        ensure_netns(netns)
        host_end = instance_link(self.state_dir, instance_id)
        _add_veth(host_end, netns, self.alias, mac=instance_mac(instance_id))
        ip("link", "set", host_end, "master", self.bridge, "up")
        ip("-n", netns, "address", "replace", f"{private_ip}/{prefixlen}", "dev", "eth0")
        # The other subnets of the VPC are on the same bridge: reachable on-link, as in a VPC.
        own = ipaddress.ip_network(f"{private_ip}/{prefixlen}", strict=False)
        for subnet in self.subnets:
            if subnet != own:
                ip("-n", netns, "route", "replace", str(subnet), "dev", "eth0")
        ip("-n", netns, "route", "replace", f"{IMDS_ADDRESS}/32", "dev", "eth0")
        return netns

    def detach(self, instance_id: str) -> None:
        delete_netns(instance_netns(self.state_dir, instance_id))

    def teardown(self) -> None:
        """Stop the metadata service, delete its netns and the bridge. Gone already is fine."""
        pid = self.imds_pid()
        if pid is not None:
            stop_process(pid, _KILL_WAIT_SECONDS, name="metadata server")
        delete_netns(self.imds_netns)
        if link_exists(self.bridge):
            ip("link", "del", self.bridge, check=False)
        for path in (self._imds_pid_file, self._imds_ready, self.registry):
            path.unlink(missing_ok=True)
        (self.directory / "network.json").unlink(missing_ok=True)


def remove_region_networks(state_dir: Path) -> None:
    """Everything network a region of state_dir made, found by name and alias, not by records."""
    networks = state_dir / "networks"
    if networks.is_dir():
        for recorded in networks.glob("*/network.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, LocalRegionError):
                data = json.loads(recorded.read_text(encoding="utf-8"))
                VpcNetwork(state_dir, data["vpc_id"], data["subnets"]).teardown()
    # Metadata servers whose pid file was lost (a crash between spawn and write): by cmdline.
    for pid in processes_named_with_files_under("webfleet.localregion.ec2.imds", networks):
        stop_process(pid, _KILL_WAIT_SECONDS, name="metadata server")
    prefix = netns_prefix(state_dir)
    if NETNS_DIR.is_dir():
        for entry in sorted(NETNS_DIR.iterdir()):
            if entry.name.startswith(prefix):
                delete_netns(entry.name)
    alias = link_alias(state_dir)
    links = json.loads(ip("-json", "link", "show").stdout or "[]")
    for link in links:
        if link.get("ifalias") == alias:
            ip("link", "del", link["ifname"], check=False)
