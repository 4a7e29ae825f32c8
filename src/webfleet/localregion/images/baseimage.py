"""The Debian base image the local region boots machines from: built once with debootstrap, cached.

`<cache_dir>/<key>/` holds `rootfs/` and `manifest.json`; the key is a hash of everything that
changes the result, and a directory only appears under it, by an atomic rename, once complete.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.mounts import remove_directory_safely
from webfleet.localregion.images import debootstrap

# Bump when the build steps change in a way the spec does not show: old cache entries are dropped.
BUILDER_VERSION = 1

CACHE_DIR_ENV = "WEBFLEET_IMAGE_CACHE"
MIRROR_ENV = "WEBFLEET_DEBIAN_MIRROR"
DEFAULT_CACHE_DIR = Path("/var/cache/webfleet/images")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"

# Suite -> Debian release number, for the AMI-style name.
_RELEASES = {"bookworm": "12", "trixie": "13"}

DEFAULT_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "cloud-init",
    "python3",
    "python3-venv",
    # debootstrap does not resolve the virtual python3-cffi-backend-api-min that
    # python3-cryptography (via cloud-init) needs, so the provider is named.
    "python3-cffi-backend",
    "sudo",
    "ca-certificates",
    "curl",
    "iproute2",
)

CLOUD_CFG = """\
# webfleet local region: instances are systemd-nspawn machines, IMDS on 169.254.169.254.
# Only Ec2 (plus None) so ds-identify picks it without its DMI/container checks.
datasource_list: [ Ec2, None ]
datasource:
  Ec2:
    # The runtime's /sys/hypervisor/uuid ("ec2...") identifies the machine as AWS, so IMDSv2
    # tokens are used; should it be missing, take the metadata service anyway.
    strict_id: false
    metadata_urls: [ 'http://169.254.169.254' ]
    max_wait: 20
    timeout: 2
locale: "false"               # quoted: skips the module and passes the schema; no locales package
network: {config: disabled}   # the runtime configures the machine's network before boot
# No VPC DNS resolver here to answer for ip-a-b-c-d: name it in /etc/hosts (sudo looks it up).
manage_etc_hosts: true
system_info:
  default_user:               # as in Debian's official AMIs: the key pair's key goes to admin
    name: admin
    lock_passwd: true
    gecos: Debian
    groups: [adm, audio, cdrom, dialout, dip, floppy, netdev, plugdev, sudo, video]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
"""

JOURNALD_CONF = """\
# A persistent journal would add megabytes to every snapshot layer.
[Journal]
Storage=volatile
"""

HOSTS = """\
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""

# Path in the image -> content. Empty machine-id: systemd makes one per machine at first boot.
# Empty resolv.conf and a neutral hostname: debootstrap copies the building host's.
DEFAULT_FILES: tuple[tuple[str, str], ...] = (
    ("/etc/cloud/cloud.cfg.d/90_webfleet.cfg", CLOUD_CFG),
    ("/etc/systemd/journald.conf.d/90-webfleet.conf", JOURNALD_CONF),
    ("/etc/machine-id", ""),
    ("/etc/hostname", "localhost\n"),
    ("/etc/resolv.conf", ""),
    ("/etc/hosts", HOSTS),
)

# Recorded in the manifest: what instances and bakes depend on.
VERSIONED_PACKAGES: tuple[str, ...] = ("cloud-init", "systemd", "python3")

_KEY = re.compile(r"[0-9a-f]{64}")
_BUILD_DIR_PREFIX = ".build-"


def mirrors_in_one_line_sources(text: str, suite: str) -> list[str]:
    """Mirror URIs of `deb` lines for suite in the classic sources.list format."""
    found: list[str] = []
    for line in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0])  # drop [options]
        words = line.split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            found.append(words[1].rstrip("/"))
    return found


def mirrors_in_deb822_sources(text: str, suite: str) -> list[str]:
    """Mirror URIs of `deb` stanzas for suite in the deb822 (.sources) format."""
    found: list[str] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
            found.extend(uri.rstrip("/") for uri in fields.get("uris", "").split())
    return found


def detect_mirror(suite: str = DEFAULT_SUITE, apt_dir: Path = Path("/etc/apt")) -> str:
    """$WEBFLEET_DEBIAN_MIRROR, else the host's apt mirror for suite, else deb.debian.org."""
    override = os.environ.get(MIRROR_ENV)
    if override:
        return override.rstrip("/")
    return host_mirror(suite, apt_dir) or DEFAULT_MIRROR


def host_mirror(suite: str, apt_dir: Path = Path("/etc/apt")) -> str | None:
    """The first mirror the host's apt sources list for suite, or None."""
    # The order apt reads them in: sources.list, then sources.list.d/ alphabetically.
    listed = sorted((apt_dir / "sources.list.d").glob("*"))
    for path in [apt_dir / "sources.list", *listed]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        if path.name == "sources.list" or path.suffix == ".list":
            found = mirrors_in_one_line_sources(text, suite)
        elif path.suffix == ".sources":
            found = mirrors_in_deb822_sources(text, suite)
        else:
            continue  # apt ignores other names (e.g. *.disabled)
        if found:
            return found[0]
    return None


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR)


@dataclass(frozen=True)
class BaseImageSpec:
    """Everything that decides what the base image contains."""

    suite: str = DEFAULT_SUITE
    architecture: str = "amd64"
    mirror: str = field(default_factory=detect_mirror)
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    files: tuple[tuple[str, str], ...] = DEFAULT_FILES

    @property
    def cache_key(self) -> str:
        payload = {
            "builder_version": BUILDER_VERSION,
            "suite": self.suite,
            "architecture": self.architecture,
            # Mirrors may serve different snapshots of the archive.
            "mirror": self.mirror,
            "packages": sorted(set(self.packages)),
            "files": sorted(self.files),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def image_name(spec: BaseImageSpec, key: str, build_date: datetime.date) -> str:
    """The name of Debian's official AMIs: debian-12-amd64-YYYYMMDD-NNNN, NNNN stable per key."""
    release = _RELEASES.get(spec.suite)
    if release is None:
        raise LocalRegionError(f"unknown Debian suite {spec.suite!r}: use one of {list(_RELEASES)}")
    serial = int(key[:8], 16) % 10_000
    return f"debian-{release}-{spec.architecture}-{build_date:%Y%m%d}-{serial:04d}"


@dataclass(frozen=True)
class BaseImage:
    """A complete, cached base image."""

    key: str
    name: str
    directory: Path  # <cache_dir>/<key>
    built_at: float  # seconds since the epoch
    build_seconds: float
    size_bytes: int
    package_versions: dict[str, str]

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs"

    @property
    def manifest_path(self) -> Path:
        return self.directory / "manifest.json"


def _load_manifest(directory: Path, key: str) -> BaseImage | None:
    try:
        data = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        image = BaseImage(
            key=str(data["key"]),
            name=str(data["name"]),
            directory=directory,
            built_at=float(data["built_at"]),
            build_seconds=float(data["build_seconds"]),
            size_bytes=int(data["size_bytes"]),
            package_versions={str(k): str(v) for k, v in data["package_versions"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if image.key != key or not image.rootfs.is_dir():
        return None
    return image


def cached_base_image(cache_dir: Path, spec: BaseImageSpec) -> BaseImage | None:
    """The complete image for spec in cache_dir, or None."""
    key = spec.cache_key
    return _load_manifest(cache_dir / key, key)


@contextlib.contextmanager
def _build_lock(cache_dir: Path, on_progress: Callable[[str], None]) -> Iterator[None]:
    # One builder per cache dir. The kernel drops the lock when its holder dies, so whoever
    # holds it knows every build directory present belongs to a dead or finished run.
    with open(cache_dir / ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_progress("waiting for another base image build to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove_stale_locked(cache_dir: Path) -> list[Path]:
    removed: list[Path] = []
    for entry in sorted(cache_dir.iterdir()):
        stale_build = entry.name.startswith(_BUILD_DIR_PREFIX)
        incomplete = bool(_KEY.fullmatch(entry.name)) and _load_manifest(entry, entry.name) is None
        if entry.is_dir() and (stale_build or incomplete):
            remove_directory_safely(entry)
            removed.append(entry)
    return removed


def remove_stale_builds(cache_dir: Path) -> list[Path]:
    """Remove what killed builds left in cache_dir (processes, mounts, directories)."""
    if not cache_dir.is_dir():
        return []
    with _build_lock(cache_dir, lambda _: None):
        return _remove_stale_locked(cache_dir)


def _tree_size(root: Path) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _dirs, names in os.walk(root):
        for name in names:
            stat = os.lstat(os.path.join(directory, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def _write_json_durably(path: Path, data: dict[str, object]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _build(cache_dir: Path, spec: BaseImageSpec, on_progress: Callable[[str], None]) -> BaseImage:
    key = spec.cache_key
    work = cache_dir / f"{_BUILD_DIR_PREFIX}{key[:12]}-{os.getpid()}"
    rootfs = work / "rootfs"
    started = time.monotonic()
    try:
        work.mkdir()
        on_progress(f"building the {spec.suite} base image from {spec.mirror} (1.5-3 min, once)")
        debootstrap.run_debootstrap(
            suite=spec.suite,
            architecture=spec.architecture,
            mirror=spec.mirror,
            packages=spec.packages,
            target=rootfs,
            failure_log=cache_dir / "debootstrap-failed.log",
            on_progress=on_progress,
        )
        on_progress("configuring the image")
        debootstrap.configure_image(rootfs, spec.files)
        built_at = time.time()
        manifest: dict[str, object] = {
            "key": key,
            "name": image_name(spec, key, datetime.datetime.fromtimestamp(built_at, datetime.UTC)),
            "builder_version": BUILDER_VERSION,
            "suite": spec.suite,
            "architecture": spec.architecture,
            "mirror": spec.mirror,
            "packages": list(spec.packages),
            "built_at": built_at,
            "build_seconds": round(time.monotonic() - started, 1),
            "size_bytes": _tree_size(rootfs),
            "package_versions": debootstrap.installed_versions(rootfs, VERSIONED_PACKAGES),
        }
        # Written last: a manifest means the tree beside it is complete.
        _write_json_durably(work / "manifest.json", manifest)
        work.rename(cache_dir / key)
    except BaseException:
        remove_directory_safely(work)
        raise
    image = _load_manifest(cache_dir / key, key)
    assert image is not None
    on_progress(f"built base image {image.name} in {image.build_seconds:.0f} s")
    return image


def _check_can_build() -> None:
    if os.geteuid() != 0:
        raise LocalRegionError(
            "building the base image needs root (debootstrap mounts and chroots): "
            "run as root, e.g. with sudo"
        )
    debootstrap.find_debootstrap()


def ensure_base_image(
    cache_dir: Path,
    on_progress: Callable[[str], None],
    spec: BaseImageSpec | None = None,
) -> BaseImage:
    """The cached base image for spec (default: Debian bookworm), building it if needed."""
    spec = spec or BaseImageSpec()
    cache_dir = cache_dir.resolve()
    image = cached_base_image(cache_dir, spec)
    if image is None:
        _check_can_build()
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _build_lock(cache_dir, on_progress):
            for path in _remove_stale_locked(cache_dir):
                on_progress(f"removed an interrupted build: {path.name}")
            # Another process may have built it while this one waited for the lock.
            image = cached_base_image(cache_dir, spec) or _build(cache_dir, spec, on_progress)
            return image
    on_progress(f"using cached base image {image.name}")
    return image
