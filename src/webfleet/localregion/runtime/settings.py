"""Where the local region keeps its state, which loopback address its API listens on, and the
CIDR of its default VPC."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.images.baseimage import default_cache_dir
from webfleet.paths import state_home

STATE_DIR_ENV = "WEBFLEET_REGION_STATE_DIR"
DEFAULT_VPC_CIDR_ENV = "WEBFLEET_REGION_DEFAULT_VPC_CIDR"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4599
# Every AWS account's default VPC has this CIDR.
AWS_DEFAULT_VPC_CIDR = "172.31.0.0/16"
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def default_state_dir() -> Path:
    """$WEBFLEET_REGION_STATE_DIR, else the XDG state home's webfleet/region."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit)
    return state_home() / "webfleet" / "region"


def default_vpc_cidr() -> str:
    """$WEBFLEET_REGION_DEFAULT_VPC_CIDR, else AWS's 172.31.0.0/16. Two regions running side by
    side need two: their default VPCs' bridges would claim the same subnets on this host."""
    return os.environ.get(DEFAULT_VPC_CIDR_ENV) or AWS_DEFAULT_VPC_CIDR


@dataclass(frozen=True)
class RegionSettings:
    """One local region: its state directory, the loopback address of its API, the cache of
    base images its machines boot (shared by regions: images are read-only lower layers) and its
    default VPC's CIDR."""

    state_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    image_cache: Path = field(default_factory=default_cache_dir)
    default_vpc_cidr: str = field(default_factory=default_vpc_cidr)

    def __post_init__(self) -> None:
        # Absolute, so the daemon's command line names the same directory from any cwd;
        # that is how status() recognises its own process.
        object.__setattr__(self, "state_dir", Path(self.state_dir).expanduser().absolute())
        object.__setattr__(self, "image_cache", Path(self.image_cache).expanduser().absolute())
        _check_loopback(self.host)
        _check_default_vpc_cidr(self.default_vpc_cidr)
        if not 1 <= self.port <= 65535:
            raise LocalRegionError(
                f"Local region port {self.port} is not a TCP port: pick one in 1-65535 "
                f"(default {DEFAULT_PORT})."
            )

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "region.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "region.log"

    @property
    def ami_catalogue(self) -> Path:
        return self.state_dir / "amis.json"


def _check_loopback(host: str) -> None:
    # The region serves an unauthenticated AWS API: it must never be reachable off this machine.
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address not in _LOOPBACK:
        raise LocalRegionError(
            f"Local region host {host!r} is not a loopback IPv4 address: use one in "
            f"127.0.0.0/8, such as {DEFAULT_HOST}."
        )


def _check_default_vpc_cidr(cidr: str) -> None:
    # A /16 like AWS's, so the default subnets (a /20 per zone) fit; private, so nothing the
    # host routes to the real network is shadowed by its bridges.
    try:
        network = ipaddress.IPv4Network(cidr)
    except ValueError:
        network = None
    if network is None or network.prefixlen != 16 or not network.is_private:
        raise LocalRegionError(
            f"Default VPC CIDR {cidr!r} (${DEFAULT_VPC_CIDR_ENV}) is not a private IPv4 /16: "
            f"use one such as {AWS_DEFAULT_VPC_CIDR} (AWS's) or 172.30.0.0/16."
        )
