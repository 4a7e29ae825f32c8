"""The base image spec: its cache key, the mirror it reads from the host, the AMI-style name."""

from __future__ import annotations

import dataclasses
import datetime
import re
from pathlib import Path

import pytest

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.images import baseimage, debootstrap
from webfleet.localregion.images.baseimage import (
    CLOUD_CFG,
    MIRROR_ENV,
    BaseImageSpec,
    detect_mirror,
    ensure_base_image,
    image_name,
)

MIRROR = "http://deb.debian.org/debian"

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def spec(**changes: object) -> BaseImageSpec:
    return dataclasses.replace(BaseImageSpec(mirror=MIRROR), **changes)  # type: ignore[arg-type]


def test_cache_key_is_stable_for_an_equal_spec() -> None:
    assert spec().cache_key == spec().cache_key
    assert re.fullmatch(r"[0-9a-f]{64}", spec().cache_key)


def test_package_order_does_not_change_the_key() -> None:
    assert spec(packages=("curl", "sudo")).cache_key == spec(packages=("sudo", "curl")).cache_key


@pytest.mark.parametrize(
    "changes",
    [
        {"suite": "trixie"},
        {"architecture": "arm64"},
        {"mirror": "http://mirror.example/debian"},
        {"packages": (*baseimage.DEFAULT_PACKAGES, "nginx")},
    ],
)
def test_anything_that_changes_the_image_changes_the_key(changes: dict[str, object]) -> None:
    assert spec(**changes).cache_key != spec().cache_key


def test_config_file_content_changes_the_key() -> None:
    files = dict(baseimage.DEFAULT_FILES)
    files["/etc/cloud/cloud.cfg.d/90_webfleet.cfg"] = CLOUD_CFG.replace(
        "max_wait: 20", "max_wait: 30"
    )
    assert spec(files=tuple(files.items())).cache_key != spec().cache_key


def test_builder_version_changes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = spec().cache_key
    monkeypatch.setattr(baseimage, "BUILDER_VERSION", baseimage.BUILDER_VERSION + 1)
    assert spec().cache_key != before


def test_mirror_comes_from_the_hosts_deb822_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "a.list.disabled-by-farm").write_text(
        "deb http://x/ bookworm main"
    )
    assert detect_mirror("bookworm", tmp_path) == "http://mirror.example/debian"


def test_mirror_comes_from_a_one_line_sources_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"
    )
    assert detect_mirror("bookworm", tmp_path) == "http://one.example/debian"


def test_mirror_env_overrides_and_default_is_debians(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert detect_mirror("bookworm", tmp_path) == "http://deb.debian.org/debian"
    monkeypatch.setenv(MIRROR_ENV, "http://env.example/debian/")
    assert detect_mirror("bookworm", tmp_path) == "http://env.example/debian"
    assert BaseImageSpec().mirror == "http://env.example/debian"


def test_name_looks_like_debians_official_ami_and_is_stable_per_key() -> None:
    key = spec().cache_key
    name = image_name(spec(), key, datetime.date(2026, 11, 22))
    assert re.fullmatch(r"debian-12-amd64-20261122-\d{4}", name)
    assert name == image_name(spec(), key, datetime.date(2026, 11, 22))


def test_stage_filter_reports_each_stage_once() -> None:
    seen: list[str] = []
    stages = debootstrap.StageFilter(seen.append)
    for line in [
        "I: Retrieving InRelease",
        "I: Checking Release signature",
        "I: Retrieving Packages",
        "I: Resolving dependencies of required packages...",
        "I: Retrieving adduser 3.134",
        "I: Retrieving apt 2.6.1",
        "I: Extracting adduser...",
        "I: Extracting apt...",
        "I: Installing core packages...",
        "I: Unpacking required packages...",
        "I: Unpacking adduser...",
        "I: Configuring required packages...",
        "I: Configuring apt...",
        "I: Base system installed successfully.",
    ]:
        stages.feed(line)
    assert seen == [
        "debootstrap: retrieving the package index",
        "debootstrap: resolving dependencies",
        "debootstrap: retrieving packages",
        "debootstrap: extracting packages",
        "debootstrap: installing core packages",
        "debootstrap: unpacking packages",
        "debootstrap: configuring packages",
        "debootstrap: base system installed",
    ]


def test_missing_debootstrap_names_the_package_and_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda *_a, **_k: None)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    with pytest.raises(LocalRegionError) as raised:
        ensure_base_image(tmp_path, lambda _: None, spec())
    assert "apt-get install --no-install-recommends debootstrap" in str(raised.value)
    assert "scripts/bootstrap" in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_not_root_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(LocalRegionError, match="needs root"):
        ensure_base_image(tmp_path, lambda _: None, spec())
