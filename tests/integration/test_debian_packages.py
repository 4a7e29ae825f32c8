"""Real apt against the Debian mirror: closures for the image's release, the cache, the errors, and
an offline install from the repository in the real base image (systemd-nspawn, no network).

The lists and .debs go to the default apt cache (/var/cache/webfleet/apt), as bakes use it:
cold, the module fetches ~60 MB; after that only what the mirror changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT
from webfleet.errors import WebfleetError
from webfleet.localregion.images import baseimage
from webfleet.stages.bundle.debs import (
    DebFile,
    PackageIndex,
    archive_name,
    image_release,
    sha256_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.runtime_minutes(1)]

if os.geteuid() != 0 or shutil.which("apt-get") is None:
    pytest.fail(
        "fetching Debian packages needs root (the apt cache) and apt: run scripts/bootstrap"
    )

BOOKWORM = image_release("debian-12-amd64-*", "x86_64")


def _stanzas(repo: Path) -> list[dict[str, str]]:
    stanzas = []
    for chunk in (repo / "Packages").read_text().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in chunk.splitlines() if line and not line[0].isspace()
        )
        stanzas.append(fields)
    return stanzas


@pytest.fixture(scope="module")
def index() -> PackageIndex:
    return PackageIndex(BOOKWORM)


@pytest.fixture(scope="module")
def nginx(
    index: PackageIndex, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[DebFile]]:
    repo = tmp_path_factory.mktemp("nginx-repo")
    return repo, index.download(["nginx"], repo)


def test_nginx_closure_is_a_flat_repository(nginx: tuple[Path, list[DebFile]]) -> None:
    repo, debs = nginx
    names = {deb.package for deb in debs}
    # The whole Depends closure, even what every image has (the status apt saw was empty).
    assert {"nginx", "nginx-common", "libc6", "libssl3", "zlib1g"} <= names
    assert "debconf" in names  # nginx-common: debconf (>= 0.5) | debconf-2.0
    # No Recommends or Suggests.
    assert not names & {"fcgiwrap", "nginx-doc", "ssl-cert", "libidn2-0"}
    for deb in debs:
        assert sha256_of(repo / deb.filename) == deb.sha256
        assert deb.filename.endswith(("_amd64.deb", "_all.deb"))
    assert sorted(p.name for p in repo.glob("*.deb")) == sorted(deb.filename for deb in debs)

    stanzas = _stanzas(repo)
    assert [(s["Package"], s["Version"]) for s in stanzas] == [(d.package, d.version) for d in debs]
    assert [s["Filename"] for s in stanzas] == [f"./{deb.filename}" for deb in debs]
    assert [s["SHA256"] for s in stanzas] == [deb.sha256 for deb in debs]
    release = (repo / "Release").read_text()
    packages = repo / "Packages"
    assert f" {sha256_of(packages)} {packages.stat().st_size} Packages\n" in release


def test_second_download_comes_from_the_cache(
    index: PackageIndex, nginx: tuple[Path, list[DebFile]], tmp_path: Path
) -> None:
    first_repo, first = nginx
    cached = [index.cache_dir / "archives" / archive_name(*_apt_key(deb)) for deb in first]
    before = [(path.stat().st_ino, path.stat().st_mtime_ns) for path in cached]

    again = index.download(["nginx"], tmp_path / "repo")

    assert again == first
    assert index.last_fetched == ()
    assert [(path.stat().st_ino, path.stat().st_mtime_ns) for path in cached] == before
    # Same inputs, same bytes.
    for name in ["Packages", "Release", *(deb.filename for deb in first)]:
        assert (tmp_path / "repo" / name).read_bytes() == (first_repo / name).read_bytes()


def _apt_key(deb: DebFile) -> tuple[str, str, str]:
    architecture = deb.filename.rsplit("_", 1)[1].removesuffix(".deb")
    return deb.package, deb.version, architecture


def test_nodejs_candidate_is_debians_18(index: PackageIndex) -> None:
    version = index.candidate_version("nodejs")
    assert version is not None and version.startswith("18."), version
    assert index.candidate_version("webfleet-no-such-package") is None
    assert index.candidate_version("node.s") is None  # not taken as a pattern


@pytest.mark.parametrize(
    "unknown", [["webfleet-no-such-a", "webfleet-no-such-b"], ["libc6.dev"], ["nginx-"]]
)
def test_unknown_packages_are_named(
    index: PackageIndex, tmp_path: Path, unknown: list[str]
) -> None:
    with pytest.raises(WebfleetError) as caught:
        index.download(["nginx", *unknown], tmp_path / "repo")
    message = str(caught.value)
    assert message.startswith("app.packages: no package")
    assert all(f"'{name}'" in message for name in unknown)
    assert "'nginx'" not in message
    assert "in Debian bookworm (amd64); search https://packages.debian.org/bookworm/" in message
    assert not (tmp_path / "repo").exists()


def test_a_virtual_package_resolves_to_its_provider(index: PackageIndex, tmp_path: Path) -> None:
    # Only python3-cffi-backend provides it (the base image names it for that reason).
    debs = index.download(["python3-cffi-backend-api-min"], tmp_path / "repo")
    assert "python3-cffi-backend" in {deb.package for deb in debs}


def test_a_virtual_package_of_several_providers_asks_for_one(
    index: PackageIndex, tmp_path: Path
) -> None:
    with pytest.raises(WebfleetError, match=r"'awk' is a virtual package .*gawk, mawk"):
        index.download(["awk"], tmp_path / "repo")


def test_other_releases_and_architectures(tmp_path: Path) -> None:
    arm = PackageIndex(image_release("debian-12-arm64-*", "arm64"))
    debs = arm.download(["nginx"], tmp_path / "arm64")
    assert {deb.filename.rsplit("_", 1)[1] for deb in debs} == {"arm64.deb", "all.deb"}
    trixie = PackageIndex(image_release("debian-13-amd64-*", "x86_64"))
    version = trixie.candidate_version("nodejs")
    assert version is not None and version.startswith("20."), version


def test_the_private_apt_config_is_what_apt_reads(index: PackageIndex) -> None:
    index.update()
    env = {**os.environ, "APT_CONFIG": str(index.cache_dir / "apt.conf")}
    dump = subprocess.run(
        ["apt-config", "dump"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert f'Dir::State::status "{index.cache_dir}/dpkg/status";' in dump
    assert f'Dir::Etc::sourceparts "{index.cache_dir}/empty.d";' in dump
    # A host's apt.conf.d (docker-gzip-indexes, say) does not reach it.
    assert 'Acquire::GzipIndexes "false";' in dump
    assert 'APT::Architecture "amd64";' in dump
    assert (index.cache_dir / "dpkg/status").read_bytes() == b""


PARALLEL_DOWNLOAD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from webfleet.stages.bundle.debs import PackageIndex, image_release
    index = PackageIndex(image_release("debian-12-amd64-*", "x86_64"), Path(sys.argv[1]))
    index.download(["nginx"], Path(sys.argv[2]))
    """
)


def test_parallel_bakes_share_a_cold_cache(tmp_path: Path) -> None:
    # apt fails, not waits, on its own locks: the processes must take turns.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-c", PARALLEL_DOWNLOAD, str(tmp_path / "cache")]
    runs = [
        subprocess.Popen([*command, str(tmp_path / f"repo{n}")], env=env, stderr=subprocess.PIPE)
        for n in range(2)
    ]
    errors = [run.communicate(timeout=300)[1].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    packages = [(tmp_path / f"repo{n}" / "Packages").read_bytes() for n in range(2)]
    assert packages[0] == packages[1] and b"Package: nginx\n" in packages[0]


def test_an_unreachable_mirror_fails_with_what_apt_said(tmp_path: Path) -> None:
    index = PackageIndex(BOOKWORM, tmp_path / "cache", mirror="http://127.0.0.1:9/debian")
    with pytest.raises(WebfleetError) as caught:
        index.update()
    message = str(caught.value)
    assert message.startswith("apt-get update failed for Debian bookworm (amd64)")
    assert "E: Failed to fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease" in message
    assert "Check that this machine reaches http://127.0.0.1:9/debian" in message


@pytest.fixture(scope="module")
def base_image() -> baseimage.BaseImage:
    if shutil.which("systemd-nspawn") is None or shutil.which("unshare") is None:
        pytest.fail(
            "the offline install test needs systemd-nspawn and unshare: run scripts/bootstrap"
        )
    return baseimage.ensure_base_image(baseimage.default_cache_dir(), lambda _: None)


def test_offline_install_in_the_base_image(
    index: PackageIndex, base_image: baseimage.BaseImage, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    index.download(["nginx", "nodejs"], repo)
    # The script install-app.sh runs on the builder, from the bundle.
    script = ROOT / "packer" / "scripts" / "install-debs.sh"
    # --volatile=overlay: the image stays read-only under a tmpfs, nothing is copied. nspawn
    # wants a tmpfs for its state, which this host's /run is not: a private one, in a mount
    # namespace of its own, so a local region's nspawn machines are not disturbed.
    nspawn = [
        "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--volatile=overlay",
        "--private-network", "--resolv-conf=off", "--timezone=off", "--link-journal=no",
        f"--directory={base_image.rootfs}", f"--bind-ro={repo}:/repo",
        f"--bind-ro={script}:/install-debs.sh",
        "sh", "-c", "set -eu; sh /install-debs.sh /repo nginx nodejs; "
        "nginx -v 2>&1; node --version; ip -o link | grep -vc ' lo:' || true",
    ]  # fmt: skip
    mount_tmpfs = (
        "mkdir -p /run/systemd/nspawn && "
        'mount -t tmpfs -o mode=0755 webfleet-debs-test /run/systemd/nspawn && exec "$@"'
    )
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount_tmpfs, "sh", *nspawn],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-3].startswith("nginx version: nginx/1.22")
    assert lines[-2].startswith("v18.")
    assert lines[-1] == "0"  # no interface but lo: the install had no network
    assert "W: " not in result.stdout + result.stderr
    assert not (base_image.rootfs / "usr/sbin/nginx").exists()
