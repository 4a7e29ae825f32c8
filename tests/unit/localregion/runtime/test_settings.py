"""RegionSettings: loopback-only addresses, valid ports, where the state lives, the default VPC."""

from __future__ import annotations

from pathlib import Path

import pytest

from webfleet.localregion.ec2.vpc_guard import guard_metric
from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.runtime.settings import RegionSettings, default_state_dir


def test_defaults_serve_on_loopback_port_4599(tmp_path: Path) -> None:
    settings = RegionSettings(state_dir=tmp_path)
    assert settings.host == "127.0.0.1"
    assert settings.port == 4599
    assert settings.endpoint_url == "http://127.0.0.1:4599"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.255.254"])
def test_accepts_any_ipv4_loopback_address(tmp_path: Path, host: str) -> None:
    settings = RegionSettings(state_dir=tmp_path, host=host, port=4600)
    assert settings.endpoint_url == f"http://{host}:4600"


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "10.0.0.1", "192.168.1.10", "128.0.0.1", "::1", "localhost", ""]
)
def test_rejects_hosts_outside_127_0_0_0_8(tmp_path: Path, host: str) -> None:
    with pytest.raises(LocalRegionError, match=r"127\.0\.0\.0/8"):
        RegionSettings(state_dir=tmp_path, host=host)


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_rejects_ports_outside_tcp_range(tmp_path: Path, port: int) -> None:
    with pytest.raises(LocalRegionError, match=r"1-65535"):
        RegionSettings(state_dir=tmp_path, port=port)


@pytest.mark.parametrize("port", [1, 65535])
def test_accepts_tcp_port_bounds(tmp_path: Path, port: int) -> None:
    assert RegionSettings(state_dir=tmp_path, port=port).port == port


def test_relative_state_dir_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = RegionSettings(state_dir=Path("state"))
    assert settings.state_dir == tmp_path / "state"


def test_region_files_live_in_the_state_dir(tmp_path: Path) -> None:
    settings = RegionSettings(state_dir=tmp_path)
    assert {settings.pid_file, settings.log_file, settings.ami_catalogue} == {
        tmp_path / "region.pid",
        tmp_path / "region.log",
        tmp_path / "amis.json",
    }


def test_default_state_dir_prefers_the_explicit_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBFLEET_REGION_STATE_DIR", "/srv/region")
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg/state")
    assert default_state_dir() == Path("/srv/region")


def test_default_state_dir_uses_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBFLEET_REGION_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg/state")
    assert default_state_dir() == Path("/xdg/state/webfleet/region")


def test_default_state_dir_falls_back_to_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBFLEET_REGION_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / ".local/state/webfleet/region"


def test_default_vpc_is_awss_unless_the_variable_names_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBFLEET_REGION_DEFAULT_VPC_CIDR", raising=False)
    assert RegionSettings(state_dir=tmp_path).default_vpc_cidr == "172.31.0.0/16"
    monkeypatch.setenv("WEBFLEET_REGION_DEFAULT_VPC_CIDR", "172.30.0.0/16")
    assert RegionSettings(state_dir=tmp_path).default_vpc_cidr == "172.30.0.0/16"


@pytest.mark.parametrize("cidr", ["172.31.0.0/20", "8.8.0.0/16", "172.31.0.1/16", "nonsense"])
def test_rejects_a_default_vpc_cidr_that_is_not_a_private_16(tmp_path: Path, cidr: str) -> None:
    with pytest.raises(LocalRegionError, match="not a private IPv4 /16"):
        RegionSettings(state_dir=tmp_path, default_vpc_cidr=cidr)


def test_each_region_guards_its_vpcs_with_a_metric_of_its_own(tmp_path: Path) -> None:
    one, other = guard_metric(tmp_path / "one"), guard_metric(tmp_path / "other")
    assert one != other
    assert min(one, other) > 0  # above the kernel's connected routes
