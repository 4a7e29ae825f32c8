"""webfleet.stages.bundle.debs without the network: releases, apt's output, the repository files."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from webfleet.errors import WebfleetError
from webfleet.localregion.images.baseimage import MIRROR_ENV
from webfleet.stages.bundle import debs
from webfleet.stages.bundle.debs import (
    DebFile,
    DebianRelease,
    PackageIndex,
    archive_name,
    image_release,
    packages_index,
    parse_candidate,
    parse_simulation,
    read_index,
    release_file,
    security_mirror,
    write_repository,
)

BOOKWORM = DebianRelease("bookworm", "12", "amd64")

NGINX = """\
Package: nginx
Version: 1.22.1-9+deb12u1
Architecture: amd64
Depends: nginx-common (= 1.22.1-9+deb12u1), libc6 (>= 2.34)
Description: small, powerful, scalable web/proxy server
Tag: interface::daemon, network::server,
 role::program
Filename: pool/main/n/nginx/nginx_1.22.1-9+deb12u1_amd64.deb
Size: 5
SHA256: {sha}
"""
NGINX_COMMON = """\
Package: nginx-common
Version: 1.22.1-9+deb12u1
Architecture: all
Provides: httpd, httpd-cgi (= 1)
Filename: pool/main/n/nginx/nginx-common_1.22.1-9+deb12u1_all.deb
Size: 6
"""
ZLIB = """\
Package: zlib1g
Version: 1:1.2.13.dfsg-1
Architecture: amd64
Filename: pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb
"""


# image_release


@pytest.mark.parametrize(
    ("name", "architecture", "expected"),
    [
        ("debian-12-amd64-*", "x86_64", DebianRelease("bookworm", "12", "amd64")),
        ("debian-12-arm64-*", "arm64", DebianRelease("bookworm", "12", "arm64")),
        ("debian-13-amd64-2025*", "x86_64", DebianRelease("trixie", "13", "amd64")),
        ("debian-12-*", "arm64", DebianRelease("bookworm", "12", "arm64")),
        ("debian-12-backports-amd64-*", "x86_64", DebianRelease("bookworm", "12", "amd64")),
    ],
)
def test_image_release(name: str, architecture: str, expected: DebianRelease) -> None:
    assert image_release(name, architecture) == expected


@pytest.mark.parametrize(
    "name", ["debian-11-amd64-*", "debian-*-amd64-*", "ubuntu-22.04-amd64-*", "debian-12", "*"]
)
def test_image_release_rejects_names_of_unknown_releases(name: str) -> None:
    with pytest.raises(WebfleetError, match=r"^image\.base_ami\.name") as caught:
        image_release(name, "x86_64")
    assert repr(name) in str(caught.value)
    assert "debian-12-* (bookworm)" in str(caught.value)
    assert "debian-13-* (trixie)" in str(caught.value)


def test_image_release_rejects_unknown_architecture() -> None:
    with pytest.raises(WebfleetError, match=r"^image\.base_ami\.architecture 'i386'"):
        image_release("debian-12-amd64-*", "i386")


def test_image_release_rejects_a_name_of_the_other_architecture() -> None:
    with pytest.raises(WebfleetError) as caught:
        image_release("debian-12-arm64-*", "x86_64")
    message = str(caught.value)
    assert "image.base_ami.name" in message and "image.base_ami.architecture" in message
    assert "arm64" in message


def test_release_names_itself_as_in_messages() -> None:
    assert str(BOOKWORM) == "Debian bookworm (amd64)"


# Where apt's state and sources come from


def test_default_cache_dir_is_per_release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(debs.APT_CACHE_ENV, raising=False)
    assert debs.default_cache_dir(BOOKWORM) == Path("/var/cache/webfleet/apt/bookworm-amd64")
    monkeypatch.setenv(debs.APT_CACHE_ENV, "/srv/apt")
    arm = DebianRelease("trixie", "13", "arm64")
    assert debs.default_cache_dir(arm) == Path("/srv/apt/trixie-arm64")


def test_mirror_default_follows_detect_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example/debian/")
    index = PackageIndex(BOOKWORM, cache_dir=Path("/nonexistent"))
    assert index.mirror == "http://mirror.example/debian"
    assert PackageIndex(BOOKWORM, Path("/x"), mirror="http://m/debian/").mirror == "http://m/debian"


def test_security_mirror_from_the_hosts_sources(tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://security.example/debian-security/\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    (parts / "old.list.disabled").write_text("deb http://wrong.example bookworm-security main\n")
    assert security_mirror("bookworm", tmp_path) == "http://security.example/debian-security"
    assert security_mirror("trixie", tmp_path) == debs.DEFAULT_SECURITY_MIRROR


def test_security_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "deb http://deb.example/debian bookworm main\n"
        "deb [arch=amd64] http://sec.example/debian-security bookworm-security main\n"
    )
    assert security_mirror("bookworm", tmp_path) == "http://sec.example/debian-security"


def test_security_mirror_ignores_the_main_mirror_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example/debian")
    assert security_mirror("bookworm", tmp_path) == debs.DEFAULT_SECURITY_MIRROR


def test_private_config_keeps_the_hosts_apt_out(tmp_path: Path) -> None:
    index = PackageIndex(BOOKWORM, cache_dir=tmp_path, mirror="http://m.example/debian")
    config = index._config()
    assert 'Dir::Etc::Main "/dev/null";' in config
    assert f'Dir::Etc::Parts "{tmp_path / "empty.d"}";' in config
    assert f'Dir::State::status "{tmp_path / "dpkg/status"}";' in config
    assert 'APT::Architectures { "amd64"; };' in config
    assert "/etc/apt" not in config and "/var/lib" not in config
    assert index._sources() == [
        f"deb [signed-by={debs.ARCHIVE_KEYRING}] http://m.example/debian bookworm main",
        f"deb [signed-by={debs.ARCHIVE_KEYRING}] http://m.example/debian bookworm-updates main",
        f"deb [signed-by={debs.ARCHIVE_KEYRING}] {index.security_mirror} bookworm-security main",
    ]


# Failing early and clearly


def test_missing_apt_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    index = PackageIndex(BOOKWORM, cache_dir=tmp_path / "cache")
    with pytest.raises(WebfleetError, match="Install the Debian package apt"):
        index.update()
    with pytest.raises(WebfleetError, match="Install the Debian package apt"):
        index.download(["nginx"], tmp_path / "repo")
    assert not (tmp_path / "cache").exists()


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt is checked for first")
def test_missing_keyring_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(debs, "ARCHIVE_KEYRING", tmp_path / "debian-archive-keyring.gpg")
    with pytest.raises(WebfleetError, match="debian-archive-keyring") as caught:
        PackageIndex(BOOKWORM, cache_dir=tmp_path / "cache").update()
    assert "apt-get install debian-archive-keyring" in str(caught.value)


def test_bad_names_are_unknown_before_apt_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no apt: it must not be needed
    index = PackageIndex(BOOKWORM, cache_dir=tmp_path / "cache")
    # apt would take these as a pattern, a version pin and a release pin.
    for name in ("lib*", "nginx=1.22", "nginx/bookworm", "Nginx"):
        with pytest.raises(WebfleetError, match=re.escape(f"no package '{name}'")):
            index.download(["nginx", name], tmp_path / "repo")
        assert index.candidate_version(name) is None


def test_unknown_message_names_every_package_and_where_to_look() -> None:
    index = PackageIndex(BOOKWORM, cache_dir=Path("/nonexistent"))
    assert index._unknown_message(["foo"]) == (
        "app.packages: no package 'foo' in Debian bookworm (amd64); search "
        "https://packages.debian.org/bookworm/ for the right name "
        "(e.g. https://packages.debian.org/search?suite=bookworm&searchon=names&keywords=foo)"
    )
    assert "no packages 'bar', 'foo' in" in index._unknown_message(["bar", "foo"])


def test_virtual_packages_with_several_providers_are_explained() -> None:
    output = (
        "Reading package lists...\nBuilding dependency tree...\n"
        "Package awk is a virtual package provided by:\n"
        "  original-awk 2022-09-12-1\n  mawk 1.3.4.20200120-3.1\n  gawk 1:5.2.1-2\n\n"
        "E: Package 'awk' has no installation candidate\n"
    )
    message = PackageIndex(BOOKWORM, Path("/x"))._resolution_failure(["awk"], output)
    assert message == (
        "app.packages: 'awk' is a virtual package in Debian bookworm (amd64), provided by "
        "gawk, mawk, original-awk: name the one to install"
    )


def test_apt_failures_keep_the_last_lines_apt_printed() -> None:
    output = "Reading package lists...\n" + "".join(f"line {n}\n" for n in range(30)) + "E: boom\n"
    message = PackageIndex(BOOKWORM, Path("/c"))._failure("apt-get update", output)
    assert message.startswith("apt-get update failed for Debian bookworm (amd64) (apt state in /c)")
    assert message.endswith("line 29\nE: boom")
    assert "line 15" not in message and "Reading package lists" not in message


# apt's output


def test_parse_simulation() -> None:
    output = """\
NOTE: This is only a simulation!
Inst debconf (1.5.82 Debian:12.15/oldstable [all])
Inst libgcc-s1 (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64]) []
Inst zlib1g (1:1.2.13.dfsg-1+deb12u1 Debian-Security:12/oldstable-security [amd64])
Inst libk5crypto3 (1.20.1-2+deb12u5 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])
Inst libssl3:arm64 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian:12.8/stable [arm64])
Conf debconf (1.5.82 Debian:12.15/oldstable [all])
"""  # noqa: E501 (apt's lines as they are)
    assert parse_simulation(output) == [
        ("debconf", "1.5.82", "all"),
        ("libgcc-s1", "12.2.0-14+deb12u1", "amd64"),
        ("zlib1g", "1:1.2.13.dfsg-1+deb12u1", "amd64"),
        ("libk5crypto3", "1.20.1-2+deb12u5", "amd64"),
        ("libssl3", "3.0.15-1~deb12u1", "arm64"),
    ]


POLICY = """\
nodejs:
  Installed: (none)
  Candidate: 18.20.4+dfsg-1~deb12u3
  Version table:
     18.20.4+dfsg-1~deb12u3 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
awk:
  Installed: (none)
  Candidate: (none)
  Version table:
"""


def test_parse_candidate() -> None:
    assert parse_candidate(POLICY, "nodejs") == "18.20.4+dfsg-1~deb12u3"
    assert parse_candidate(POLICY, "awk") is None  # virtual
    assert parse_candidate("", "foo") is None  # unknown: apt prints only a notice
    # A name apt took as a pattern answers with other packages' entries.
    assert parse_candidate(POLICY, "node.s") is None


def test_archive_name_is_the_one_apt_gives() -> None:
    assert archive_name("nginx", "1.22.1-9", "amd64") == "nginx_1.22.1-9_amd64.deb"
    assert (
        archive_name("zlib1g", "1:1.2.13.dfsg-1", "amd64") == "zlib1g_1%3a1.2.13.dfsg-1_amd64.deb"
    )


def test_read_index(tmp_path: Path) -> None:
    (tmp_path / "a_main_binary-amd64_Packages").write_text(
        NGINX.format(sha="0" * 64) + "\n" + NGINX_COMMON
    )
    (tmp_path / "b_security_binary-amd64_Packages").write_text(ZLIB + "\n")
    (tmp_path / "a_InRelease").write_text("not a list")
    index = read_index(tmp_path)
    assert sorted(index.stanzas) == ["nginx", "nginx-common", "zlib1g"]
    assert index.provides == {"httpd": {"nginx-common"}, "httpd-cgi": {"nginx-common"}}
    assert index.knows("httpd") and index.knows("zlib1g") and not index.knows("apache2")
    entry = index.entry("nginx", "1.22.1-9+deb12u1", "amd64")
    assert (entry.filename, entry.size, entry.sha256) == (
        "nginx_1.22.1-9+deb12u1_amd64.deb",
        5,
        "0" * 64,
    )
    assert index.entry("zlib1g", "1:1.2.13.dfsg-1", "amd64").size is None
    with pytest.raises(WebfleetError, match="its lists do not have"):
        index.entry("nginx", "1.0", "amd64")


# The repository


def test_packages_index_is_sorted_with_flat_filenames() -> None:
    text = packages_index(
        [
            (ZLIB, "zlib1g_1.2.13.dfsg-1_amd64.deb"),
            (NGINX.format(sha="a" * 64), "nginx_1.22.1-9+deb12u1_amd64.deb"),
            ("Package: extra\nVersion: 1\nArchitecture: all\n", "extra_1_all.deb"),
        ]
    )
    stanzas = text.split("\n\n")
    assert [s.split("\n", 1)[0] for s in stanzas] == [
        "Package: extra",
        "Package: nginx",
        "Package: zlib1g",
    ]
    assert stanzas[0].endswith("Filename: ./extra_1_all.deb")  # added where there was none
    assert "Filename: ./nginx_1.22.1-9+deb12u1_amd64.deb\nSize: 5\n" in stanzas[1]
    assert "Tag: interface::daemon, network::server,\n role::program\n" in stanzas[1]
    assert "pool/" not in text
    assert text.endswith("_amd64.deb\n") and "\n\n\n" not in text


def test_release_file_has_the_packages_checksum_and_no_time_of_its_own() -> None:
    packages = b"Package: x\n"
    text = release_file(packages, BOOKWORM)
    assert f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n" in text
    assert "Date: Tue, 01 Jan 1980 00:00:00 UTC\n" in text
    assert "Architectures: amd64 all\n" in text
    assert "Suite:" not in text and "Codename:" not in text
    assert release_file(packages, BOOKWORM) == text


def _fake_archives(tmp_path: Path) -> tuple[Path, list[debs._Entry]]:
    archives = tmp_path / "archives"
    archives.mkdir()
    contents = {"nginx": b"nginx", "nginx-common": b"common", "zlib1g": b"zlib"}
    stanzas = {
        "nginx": NGINX.format(sha=hashlib.sha256(b"nginx").hexdigest()),
        "nginx-common": NGINX_COMMON,
        "zlib1g": ZLIB,
    }
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "x_Packages").write_text("\n".join(stanzas.values()))
    index = read_index(lists)
    entries = []
    for name, stanza in stanzas.items():
        version, arch = debs._field(stanza, "Version"), debs._field(stanza, "Architecture")
        assert version and arch
        (archives / archive_name(name, version, arch)).write_bytes(contents[name])
        entries.append(index.entry(name, version, arch))
    return archives, entries


def test_write_repository(tmp_path: Path) -> None:
    archives, entries = _fake_archives(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "old_1_all.deb").write_bytes(b"stale")

    written = write_repository(repo, list(reversed(entries)), BOOKWORM, archives)

    assert written == [
        DebFile("nginx", "1.22.1-9+deb12u1", "nginx_1.22.1-9+deb12u1_amd64.deb", _sha(b"nginx")),
        DebFile(
            "nginx-common",
            "1.22.1-9+deb12u1",
            "nginx-common_1.22.1-9+deb12u1_all.deb",
            _sha(b"common"),
        ),
        DebFile("zlib1g", "1:1.2.13.dfsg-1", "zlib1g_1.2.13.dfsg-1_amd64.deb", _sha(b"zlib")),
    ]
    assert sorted(p.name for p in repo.iterdir()) == sorted(
        [deb.filename for deb in written] + ["Packages", "Release"]
    )
    # Linked, not copied, from the cache (same file system here).
    cached = archives / "zlib1g_1%3a1.2.13.dfsg-1_amd64.deb"
    assert (repo / "zlib1g_1.2.13.dfsg-1_amd64.deb").samefile(cached)
    packages = (repo / "Packages").read_bytes()
    assert packages.count(b"Filename: ./") == 3
    assert _sha(packages) in (repo / "Release").read_text()


def test_write_repository_is_deterministic(tmp_path: Path) -> None:
    archives, entries = _fake_archives(tmp_path)
    first = write_repository(tmp_path / "one", entries, BOOKWORM, archives)
    second = write_repository(tmp_path / "two", entries[::-1], BOOKWORM, archives)
    assert first == second
    for name in ["Packages", "Release", *(deb.filename for deb in first)]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_no_packages_give_an_empty_repository_without_apt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    index = PackageIndex(BOOKWORM, cache_dir=tmp_path / "cache")
    assert index.download([], tmp_path / "repo") == []
    assert (tmp_path / "repo" / "Packages").read_bytes() == b""
    assert _sha(b"") in (tmp_path / "repo" / "Release").read_text()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
