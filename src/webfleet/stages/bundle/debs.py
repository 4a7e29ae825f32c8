"""Debian packages for the app image: resolved for the image's release and architecture (not this
machine's), downloaded here with their dependencies, and laid out as a flat apt repository that
the image builder, an instance with no network, installs from.

apt runs with a configuration of its own under the cache directory: its own sources (the suite,
<suite>-updates and <suite>-security, main), lists, archives and an EMPTY dpkg status. The closure
of Depends and Pre-Depends is therefore complete for any Debian <N> image, Debian's official AMIs
included, whatever they already have. apt neither reads nor changes the host's apt state (sources,
lists, dpkg status, apt.conf.d): from the host come only its mirrors (as detect_mirror finds
them) and its proxy and date-check settings.

The repository is `<repo_dir>/*.deb`, `Packages` (the stanzas as the archive's index has them,
sorted, `Filename: ./<file>`) and `Release` (the SHA256 of Packages, a fixed Date): the same
packages give the same bytes. On the instance, packer/scripts/install-debs.sh (shipped in
the bundle) installs from it with apt and private lists, offline.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from webfleet.errors import WebfleetError
from webfleet.localregion.images.baseimage import (
    MIRROR_ENV,
    detect_mirror,
    host_mirror,
)

# Debian release number (as in Debian's AMI names, debian-12-amd64-*) -> suite.
SUITES: dict[str, str] = {"12": "bookworm", "13": "trixie"}
# EC2's names (image.base_ami.architecture) -> Debian's.
ARCHITECTURES: dict[str, str] = {"x86_64": "amd64", "arm64": "arm64"}

APT_CACHE_ENV = "WEBFLEET_APT_CACHE"
DEFAULT_APT_CACHE = Path("/var/cache/webfleet/apt")
ARCHIVE_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Debian drops superseded versions from the mirrors: lists older than this may name missing files.
DEFAULT_MAX_AGE_SECONDS = 86400.0
PACKAGES_FILE = "Packages"
RELEASE_FILE = "Release"
# The Release file's Date (the bundle's fixed epoch): the same packages give the same bytes.
RELEASE_DATE = "Tue, 01 Jan 1980 00:00:00 UTC"

# Debian policy 5.6.1. A name apt sees must also be in its lists (download checks): apt takes an
# unknown name with "." or "+" as a regular expression (libc6.dev selects 180 packages), one
# ending in "-" as "remove", and "=" or "/" as a pin.
_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_AMI_RELEASE = re.compile(r"debian-(\d+)-")
# `apt-get install --simulate`: "Inst libc6 (2.36-9+deb12u7 Debian:12.6/stable [amd64])", with
# "[old version] " after the name for upgrades (none against an empty status).
_INST = re.compile(
    r"^Inst (?P<name>[^\s:]+)(?::\S+)? (?:\[[^\]]*\] )?"
    r"\((?P<version>\S+) [^\[]*\[(?P<arch>[^\]\s]+)\]\)",
    re.MULTILINE,
)
_VIRTUAL = re.compile(r"^Package (\S+) is a virtual package provided by:\n((?:  .*\n)+)", re.M)
_DOWNLOAD = "apt-get install --download-only"
# apt's own chatter: no clue to what failed.
_NOISE = ("Reading package lists", "Building dependency tree", "Reading state information")
# The host's choices for reaching and trusting its mirror (`apt-config dump` lines): a proxy, or
# the date checks a snapshot mirror needs off.
_HOST_ACQUIRE = re.compile(
    r"^Acquire::(?:(?:https?|ftp)::Proxy(?:-Auto-Detect)?(?:::\S+)?|Check-Valid-Until|Check-Date)"
    r' "[^"\n]*";$',
    re.MULTILINE,
)


@dataclass(frozen=True)
class DebianRelease:
    suite: str  # "bookworm"
    version: str  # "12"
    architecture: str  # Debian's: "amd64" or "arm64"

    def __str__(self) -> str:
        return f"Debian {self.suite} ({self.architecture})"


@dataclass(frozen=True)
class DebFile:
    package: str
    version: str
    filename: str  # the file's name in the repository directory
    sha256: str


def image_release(base_ami_name: str, architecture: str) -> DebianRelease:
    """The release of the app image, from image.base_ami.name (e.g. "debian-12-amd64-*") and
    image.base_ami.architecture ("x86_64" or "arm64")."""
    match = _AMI_RELEASE.match(base_ami_name)
    suite = SUITES.get(match.group(1)) if match else None
    if match is None or suite is None:
        known = ", ".join(f"debian-{number}-* ({name})" for number, name in SUITES.items())
        raise WebfleetError(
            f"image.base_ami.name {base_ami_name!r}: not a Debian release webfleet knows the "
            f"packages of. Use the name of Debian's AMIs, debian-<release>-<arch>-*: {known}"
        )
    debian_arch = ARCHITECTURES.get(architecture)
    if debian_arch is None:
        raise WebfleetError(
            f"image.base_ami.architecture {architecture!r}: use one of {sorted(ARCHITECTURES)}"
        )
    words = base_ami_name.split("-")
    others = sorted({a for a in ARCHITECTURES.values() if a != debian_arch and a in words})
    if others:
        raise WebfleetError(
            f"image.base_ami.name {base_ami_name!r} names {others[0]} images, but "
            f"image.base_ami.architecture is {architecture!r} ({debian_arch}): make them agree"
        )
    return DebianRelease(suite=suite, version=match.group(1), architecture=debian_arch)


def default_cache_dir(release: DebianRelease) -> Path:
    parent = Path(os.environ.get(APT_CACHE_ENV) or DEFAULT_APT_CACHE)
    return parent / f"{release.suite}-{release.architecture}"


def security_mirror(suite: str, apt_dir: Path = Path("/etc/apt")) -> str:
    """The host's apt source for <suite>-security, else Debian's."""
    # Without detect_mirror's override: $WEBFLEET_DEBIAN_MIRROR is the main archive, which has
    # no -security suite.
    return host_mirror(f"{suite}-security", apt_dir) or DEFAULT_SECURITY_MIRROR


@dataclass(frozen=True)
class _Entry:
    """One package apt chose: its stanza in the index and its file in the archives cache."""

    package: str
    version: str
    architecture: str
    stanza: str
    filename: str  # basename of the pool file
    size: int | None
    sha256: str | None


@dataclass
class _Index:
    """The Packages lists apt fetched: every stanza by package name, and who provides what."""

    stanzas: dict[str, list[str]] = field(default_factory=dict)
    provides: dict[str, set[str]] = field(default_factory=dict)

    def knows(self, name: str) -> bool:
        return name in self.stanzas or name in self.provides

    def entry(self, package: str, version: str, architecture: str) -> _Entry:
        for stanza in self.stanzas.get(package, []):
            if (_field(stanza, "Version"), _field(stanza, "Architecture")) == (
                version,
                architecture,
            ):
                pool = _field(stanza, "Filename") or ""
                name = PurePosixPath(pool).name
                if not name.endswith(".deb") or name.startswith("."):
                    raise WebfleetError(f"the Debian index has a bad Filename {pool!r}")
                size = _field(stanza, "Size")
                return _Entry(
                    package,
                    version,
                    architecture,
                    stanza,
                    name,
                    int(size) if size and size.isdigit() else None,
                    _field(stanza, "SHA256"),
                )
        raise WebfleetError(
            f"apt chose {package} {version} ({architecture}), which its lists do not have: "
            "remove the apt cache directory and run again"
        )


class _StaleLists(Exception):
    """The mirror no longer has a file the lists name."""


class PackageIndex:
    """apt on this machine, configured for one Debian release only, with private state under
    cache_dir (never the host's /var/lib/apt, /etc/apt/sources.list or dpkg status).

    Processes using the same cache_dir take turns (an flock on cache_dir/.lock): apt itself
    would fail, not wait, on its own locks."""

    def __init__(
        self, release: DebianRelease, cache_dir: Path | None = None, mirror: str | None = None
    ) -> None:
        self.release = release
        self.cache_dir = (cache_dir or default_cache_dir(release)).absolute()
        self.mirror = (mirror or detect_mirror(release.suite)).rstrip("/")
        self.security_mirror = security_mirror(release.suite).rstrip("/")
        # What the last download() fetched from the mirror; empty when the cache had it all.
        self.last_fetched: tuple[DebFile, ...] = ()

    # Public operations.

    def update(self, max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS) -> None:
        """apt-get update, only when the lists are missing or older than max_age_seconds."""
        with self._locked():
            self._update_locked(max_age_seconds)

    def candidate_version(self, package: str) -> str | None:
        """The version apt would install (e.g. "18.20.4+dfsg-1~deb12u2" for nodejs), or None
        when the release has no such package (or only a virtual one)."""
        if not _PACKAGE_NAME.fullmatch(package):
            return None
        with self._locked():
            self._update_locked(DEFAULT_MAX_AGE_SECONDS)
            result = self._apt(["apt-cache", "policy", package])
        if result.returncode != 0:
            raise WebfleetError(self._failure("apt-cache policy", result.stdout))
        return parse_candidate(result.stdout, package)

    def download(self, packages: Sequence[str], repo_dir: Path) -> list[DebFile]:
        """packages and their Depends/Pre-Depends closure, as a flat repository in repo_dir.

        Other .deb files in repo_dir are removed. Downloaded files stay cached in cache_dir."""
        names = sorted(set(packages))
        invalid = [name for name in names if not _PACKAGE_NAME.fullmatch(name)]
        if invalid:
            raise WebfleetError(self._unknown_message(invalid))
        repo_dir = repo_dir.absolute()
        if not names:
            self.last_fetched = ()
            return write_repository(repo_dir, [], self.release, self._archives)
        with self._locked():
            updated = self._update_locked(DEFAULT_MAX_AGE_SECONDS)
            try:
                entries, fetched = self._fetch_locked(names)
            except _StaleLists as stale:
                if updated:
                    raise WebfleetError(self._failure(_DOWNLOAD, str(stale))) from None
                # Lists younger than a day, yet the mirror moved on (a point release).
                self._update_locked(0)
                try:
                    entries, fetched = self._fetch_locked(names)
                except _StaleLists as again:
                    raise WebfleetError(self._failure(_DOWNLOAD, str(again))) from None
            debs = write_repository(repo_dir, entries, self.release, self._archives)
        self.last_fetched = tuple(deb for deb in debs if deb.filename in fetched)
        return debs

    # Layout of cache_dir.

    @property
    def _lists(self) -> Path:
        return self.cache_dir / "lists"

    @property
    def _archives(self) -> Path:
        return self.cache_dir / "archives"

    @property
    def _config_file(self) -> Path:
        return self.cache_dir / "apt.conf"

    @property
    def _sources_file(self) -> Path:
        return self.cache_dir / "sources.list"

    @property
    def _stamp(self) -> Path:
        # Not in lists/: apt's update deletes what it does not know there.
        return self.cache_dir / "lists.stamp"

    def _sources(self) -> list[str]:
        signed = f"[signed-by={ARCHIVE_KEYRING}]"
        suite = self.release.suite
        return [
            f"deb {signed} {self.mirror} {suite} main",
            f"deb {signed} {self.mirror} {suite}-updates main",
            f"deb {signed} {self.security_mirror} {suite}-security main",
        ]

    def _config(self) -> str:
        d = self.cache_dir
        empty = d / "empty.d"
        lines = [
            f"// webfleet: apt for {self.release} only, its state under {d}. Rewritten each run.",
            # APT_CONFIG is read first, so these keep the host's apt.conf(.d) out.
            'Dir::Etc::Main "/dev/null";',
            f'Dir::Etc::Parts "{empty}";',
            f'Dir::Etc::SourceList "{self._sources_file}";',
            f'Dir::Etc::SourceParts "{empty}";',
            f'Dir::Etc::Preferences "{d / "preferences"}";',  # never created
            f'Dir::Etc::PreferencesParts "{empty}";',
            f'Dir::Etc::Trusted "{d / "trusted.gpg"}";',  # never created: sources say signed-by
            f'Dir::Etc::TrustedParts "{empty}";',
            f'Dir::State "{d / "state"}";',
            f'Dir::State::Lists "{self._lists}";',
            # Empty: nothing counts as installed, so the closure is complete. Its directory
            # also holds the dpkg locks apt takes for --download-only.
            f'Dir::State::status "{d / "dpkg" / "status"}";',
            f'Dir::Cache "{d / "cache"}";',
            f'Dir::Cache::Archives "{self._archives}";',
            f'Dir::Log "{d / "log"}";',
            f'APT::Architecture "{self.release.architecture}";',
            f'APT::Architectures {{ "{self.release.architecture}"; }};',
            'APT::Install-Recommends "false";',
            'APT::Install-Suggests "false";',
            'Acquire::Languages "none";',
            # Plain lists: read_index parses them.
            'Acquire::GzipIndexes "false";',
            'Acquire::Retries "3";',
            *_host_acquire_settings(),
        ]
        return "\n".join(lines) + "\n"

    # apt.

    def _apt(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("APT_CONFIG", "LANG", "LANGUAGE") and not key.startswith("LC_")
        }
        env.update(APT_CONFIG=str(self._config_file), LC_ALL="C", DEBIAN_FRONTEND="noninteractive")
        try:
            return subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                encoding="utf-8",
                errors="replace",
                env=env,
                check=False,
            )
        except FileNotFoundError:
            raise WebfleetError(_missing_apt()) from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if shutil.which("apt-get") is None or shutil.which("apt-cache") is None:
            raise WebfleetError(_missing_apt())
        if not ARCHIVE_KEYRING.is_file():
            raise WebfleetError(
                f"{ARCHIVE_KEYRING} is missing: apt checks the Debian archive's signatures with "
                "it. Install the Debian package debian-archive-keyring "
                "(apt-get install debian-archive-keyring)."
            )
        if any(c in str(self.cache_dir) for c in '"\n'):
            raise WebfleetError(f"apt cache directory {self.cache_dir!r}: no quotes or newlines")
        try:
            for sub in ("empty.d", "state", "lists/partial", "dpkg", "cache", "archives/partial"):
                (self.cache_dir / sub).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WebfleetError(
                f"cannot create the apt cache {self.cache_dir} ({error.strerror}): run as root, "
                f"or set {APT_CACHE_ENV} to a directory of your own"
            ) from None
        with open(self.cache_dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write_config_locked(self) -> str:
        """Write apt.conf, sources.list and the empty status; the key of the lists they give."""
        sources = "\n".join(self._sources()) + "\n"
        config = self._config()
        status = self.cache_dir / "dpkg" / "status"
        for path, text in ((self._sources_file, sources), (self._config_file, config)):
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                _write_atomically(path, text.encode())
        if not status.is_file() or status.stat().st_size:
            _write_atomically(status, b"")
        return hashlib.sha256((sources + config).encode()).hexdigest()

    def _update_locked(self, max_age_seconds: float) -> bool:
        """Update the lists if needed; whether it did."""
        key = self._write_config_locked()
        if self._lists_are_fresh(key, max_age_seconds):
            return False
        result = self._apt(["apt-get", "-q", "update", "--error-on=any"])
        if result.returncode != 0:
            raise WebfleetError(
                self._failure("apt-get update", result.stdout)
                + f"\nCheck that this machine reaches {self.mirror} and {self.security_mirror} "
                f"(another mirror: ${MIRROR_ENV})."
            )
        _write_atomically(self._stamp, (key + "\n").encode())
        return True

    def _lists_are_fresh(self, key: str, max_age_seconds: float) -> bool:
        try:
            stamp = self._stamp.stat()
            recorded = self._stamp.read_text(encoding="utf-8").strip()
        except OSError:
            return False
        lists = list(self._lists.glob("*_Packages"))
        return (
            recorded == key
            and time.time() - stamp.st_mtime < max_age_seconds
            and len(lists) >= len(self._sources())
        )

    def _fetch_locked(self, names: list[str]) -> tuple[list[_Entry], set[str]]:
        """The entries apt chooses for names, all in the archives cache; the files it fetched."""
        index = read_index(self._lists)
        unknown = [name for name in names if not index.knows(name)]
        if unknown:
            raise WebfleetError(self._unknown_message(unknown))
        options = ["-q", "install", "--no-install-recommends", "-o", "APT::Install-Suggests=0"]
        simulation = self._apt(["apt-get", *options, "--simulate", *names])
        if simulation.returncode != 0:
            raise WebfleetError(self._resolution_failure(names, simulation.stdout))
        chosen = parse_simulation(simulation.stdout)
        # Should apt's output change, fail here rather than lay out a repository short of them.
        left_out = [n for n in names if n in index.stanzas and n not in {c[0] for c in chosen}]
        if left_out or not chosen:
            raise WebfleetError(
                f"apt-get --simulate for {self.release} chose no {' '.join(left_out) or 'package'}"
                f"; {_said(simulation.stdout)}"
            )
        entries = [index.entry(*choice) for choice in chosen]
        missing = [entry for entry in entries if not self._cached(entry)]
        if missing:
            result = self._apt(["apt-get", *options, "--download-only", "-y", *names])
            if result.returncode != 0:
                if re.search(r"Failed to fetch .*\b404\b", result.stdout):
                    raise _StaleLists(result.stdout)
                raise WebfleetError(self._failure(_DOWNLOAD, result.stdout))
            absent = [entry.filename for entry in missing if not self._cached(entry)]
            if absent:
                raise WebfleetError(
                    f"apt-get downloaded, but {', '.join(absent)} is not in {self._archives} "
                    "with the index's checksum"
                )
        return entries, {entry.filename for entry in missing}

    def _cached(self, entry: _Entry) -> bool:
        """Whether the archives cache has entry's file, intact (a bad copy is removed)."""
        path = self._archives / archive_name(entry.package, entry.version, entry.architecture)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        if (entry.size is not None and size != entry.size) or (
            entry.sha256 is not None and sha256_of(path) != entry.sha256
        ):
            path.unlink()
            return False
        return True

    # Messages.

    def _unknown_message(self, unknown: Sequence[str]) -> str:
        suite = self.release.suite
        quoted = ", ".join(f"'{name}'" for name in unknown)
        noun = "package" if len(unknown) == 1 else "packages"
        example = f"https://packages.debian.org/search?suite={suite}&searchon=names&keywords="
        return (
            f"app.packages: no {noun} {quoted} in Debian {suite} ({self.release.architecture}); "
            f"search https://packages.debian.org/{suite}/ for the right name "
            f"(e.g. {example}{unknown[0]})"
        )

    def _resolution_failure(self, names: Sequence[str], output: str) -> str:
        virtual = [
            f"'{name}' is a virtual package in {self.release}, provided by "
            f"{', '.join(sorted({line.split()[0] for line in block.splitlines()}))}"
            for name, block in _VIRTUAL.findall(output)
        ]
        if virtual:
            return "app.packages: " + "; ".join(virtual) + ": name the one to install"
        return (
            f"apt cannot install {' '.join(names)} on {self.release} (Depends and Pre-Depends "
            f"only, on an empty system); {_said(output)}"
        )

    def _failure(self, command: str, output: str) -> str:
        where = f"{self.release} (apt state in {self.cache_dir})"
        return f"{command} failed for {where}; {_said(output)}"


def _missing_apt() -> str:
    return (
        "apt-get and apt-cache are not on PATH: webfleet fetches the app's Debian packages with "
        "them. Install the Debian package apt."
    )


def _host_acquire_settings() -> list[str]:
    try:
        result = subprocess.run(
            ["apt-config", "dump"], capture_output=True, text=True, check=False, errors="replace"
        )
    except FileNotFoundError:
        return []
    return _HOST_ACQUIRE.findall(result.stdout) if result.returncode == 0 else []


def _said(output: str, lines: int = 15) -> str:
    """apt's last lines, where it says what failed."""
    kept = [line for line in output.splitlines() if line.strip() and not line.startswith(_NOISE)]
    return "apt said:\n" + "\n".join(kept[-lines:]) if kept else "apt printed nothing"


# Parsing apt's output and index.


def parse_candidate(policy_output: str, package: str) -> str | None:
    """The Candidate of package in `apt-cache policy` output; None for "(none)" or no entry."""
    inside = False
    for line in policy_output.splitlines():
        if not line.startswith(" "):
            # apt takes an unknown name with "." or "+" as a pattern: other packages' entries.
            inside = line == f"{package}:"
        elif inside and line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            return None if version == "(none)" else version
    return None


def parse_simulation(output: str) -> list[tuple[str, str, str]]:
    """(package, version, architecture) of each Inst line of `apt-get install --simulate`."""
    return [(m["name"], m["version"], m["arch"]) for m in _INST.finditer(output)]


def _field(stanza: str, name: str) -> str | None:
    """A one-line field's value; fast enough to run over a whole Packages list."""
    prefix = name + ": "
    if stanza.startswith(prefix):
        start = len(prefix)
    else:
        at = stanza.find("\n" + prefix)
        if at < 0:
            return None
        start = at + 1 + len(prefix)
    end = stanza.find("\n", start)
    return stanza[start : end if end >= 0 else len(stanza)].strip()


def read_index(lists_dir: Path) -> _Index:
    """Every *_Packages list in lists_dir (uncompressed), in name order."""
    index = _Index()
    for path in sorted(lists_dir.glob("*_Packages")):
        for chunk in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            stanza = chunk.strip("\n")
            name = _field(stanza, "Package")
            if not name:
                continue
            index.stanzas.setdefault(name, []).append(stanza)
            for provided in (_field(stanza, "Provides") or "").split(","):
                virtual = provided.split("(")[0].strip()
                if virtual:
                    index.provides.setdefault(virtual, set()).add(name)
    return index


def archive_name(package: str, version: str, architecture: str) -> str:
    """The file name apt gives a package in its archives cache (an epoch's ":" as "%3a")."""

    def quote(text: str, bad: str) -> str:
        return "".join(
            f"%{ord(c):02x}" if c in bad or c == "%" or not (" " < c < "\x7f") else c for c in text
        )

    return f"{quote(package, '_:')}_{quote(version, '_:')}_{quote(architecture, '_:.')}.deb"


# The repository.


def packages_index(stanzas: Sequence[tuple[str, str]]) -> str:
    """The Packages file: (stanza, file name in the repository) pairs, sorted, each stanza with
    `Filename: ./<file>` in place of the archive's pool path."""

    def key(item: tuple[str, str]) -> tuple[str, str, str]:
        stanza = item[0]
        return (
            _field(stanza, "Package") or "",
            _field(stanza, "Version") or "",
            _field(stanza, "Architecture") or "",
        )

    out: list[str] = []
    for stanza, filename in sorted(stanzas, key=key):
        lines = stanza.strip("\n").split("\n")
        line = f"Filename: ./{filename}"
        at = next((i for i, text in enumerate(lines) if text.startswith("Filename:")), None)
        if at is None:
            lines.append(line)
        else:
            lines[at] = line
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def release_file(packages: bytes, release: DebianRelease) -> str:
    """The Release file: the SHA256 of Packages, and a fixed Date, so equal packages give equal
    bytes. No Suite or Codename: apt would compare them with the flat source's "./"."""
    digest = hashlib.sha256(packages).hexdigest()
    return (
        "Origin: webfleet\n"
        "Label: webfleet app packages\n"
        # apt warns of a Release without a Date; one in the past is never "not valid yet".
        f"Date: {RELEASE_DATE}\n"
        f"Description: Debian {release.version} ({release.suite}) packages for the app image, "
        f"{release.architecture}, with their dependencies\n"
        f"Architectures: {release.architecture} all\n"
        "SHA256:\n"
        f" {digest} {len(packages)} {PACKAGES_FILE}\n"
    )


def write_repository(
    repo_dir: Path,
    entries: Sequence[_Entry],
    release: DebianRelease,
    archives: Path,
) -> list[DebFile]:
    """Lay out entries (their files from archives) as a flat repository in repo_dir."""
    repo_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(entries, key=lambda e: (e.package, e.version, e.architecture))
    debs: list[DebFile] = []
    for entry in ordered:
        source = archives / archive_name(entry.package, entry.version, entry.architecture)
        sha256 = entry.sha256 or sha256_of(source)
        _place(source, repo_dir / entry.filename, sha256)
        debs.append(DebFile(entry.package, entry.version, entry.filename, sha256))
    wanted = {deb.filename for deb in debs}
    for stale in repo_dir.glob("*.deb"):
        if stale.name not in wanted:
            stale.unlink()
    packages = packages_index([(entry.stanza, entry.filename) for entry in ordered]).encode()
    _write_atomically(repo_dir / PACKAGES_FILE, packages)
    _write_atomically(repo_dir / RELEASE_FILE, release_file(packages, release).encode())
    return debs


def _place(source: Path, target: Path, sha256: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if target.samefile(source) or sha256_of(target) == sha256:
            return
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)  # no copy when repo_dir is on the cache's file system
    except OSError:
        shutil.copyfile(source, partial)
    partial.chmod(0o644)
    partial.replace(target)


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.chmod(0o644)
    partial.replace(path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
