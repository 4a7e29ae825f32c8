"""Keep traffic to VPC addresses on this host: an `unreachable` route per VPC CIDR.

Without it, a packet to a VPC address that has no machine (yet) follows the host's default route
out of its real interface: Packer's SSH attempts to a booting builder did exactly that. The
subnets' bridge addresses give connected routes that are more specific (or, for a subnet as
large as its VPC, a lower metric), so live machines stay reachable.

Each guard is recorded under the state directory before its route is added, so a new process can
remove what a crashed one left.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import threading
from pathlib import Path

from webfleet.localregion.ec2.network import ip, region_tag
from webfleet.localregion.errors import LocalRegionError

# Above the kernel's connected routes (metric 0): a subnet's own route always wins.
_GUARD_METRIC_BASE = 100_000


def guard_metric(state_dir: Path) -> int:
    """The metric of one region's guard routes: its own, so two regions whose VPCs share a CIDR
    (each region's default VPC) each keep and remove only their route."""
    return _GUARD_METRIC_BASE + int(region_tag(state_dir), 16)


class VpcGuards:
    """The unreachable routes of one region's VPCs, recorded in <state_dir>/vpc-routes.json."""

    def __init__(self, state_dir: Path) -> None:
        # Not under networks/: the machine runtime removes that directory wholesale.
        self._path = state_dir / "vpc-routes.json"
        self._metric = str(guard_metric(state_dir))
        self._lock = threading.Lock()

    def guard(self, vpc_id: str, cidr: str) -> None:
        network = str(ipaddress.ip_network(cidr, strict=False))
        with self._lock:
            guards = self._read()
            guards[vpc_id] = network
            self._write(guards)
            _add_route(network, self._metric)

    def unguard(self, vpc_id: str) -> None:
        with self._lock:
            guards = self._read()
            network = guards.pop(vpc_id, None)
            self._write(guards)
            # Two VPCs of this region may share a CIDR: keep the route while one does.
            if network is not None and network not in guards.values():
                _delete_route(network, self._metric)

    def remove_all(self) -> None:
        with self._lock:
            for network in set(self._read().values()):
                _delete_route(network, self._metric)
            self._path.unlink(missing_ok=True)

    def cidrs(self) -> dict[str, str]:
        with self._lock:
            return self._read()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise LocalRegionError(f"unreadable VPC route record {self._path}: {error}") from None
        return {str(key): str(value) for key, value in data.items()}

    def _write(self, guards: dict[str, str]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        partial = self._path.with_suffix(".tmp")
        partial.write_text(json.dumps(guards, indent=1, sort_keys=True), encoding="utf-8")
        partial.replace(self._path)


def _add_route(network: str, metric: str) -> None:
    ip("route", "replace", "unreachable", network, "metric", metric)


def _delete_route(network: str, metric: str) -> None:
    with contextlib.suppress(LocalRegionError):  # gone already
        ip("route", "del", "unreachable", network, "metric", metric)
