"""The app bundle: the app and its dependencies as wheels, built on the host for offline installs.

Instances have no internet, so the bake uploads `app-bundle.tar.gz` (wheelhouse/, bundle.json,
install-app.sh) and `install-app.sh` installs from it with `pip --no-index`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from webfleet.errors import WebfleetError
from webfleet.paths import ProjectPaths

BUNDLE_FILE = "app-bundle.tar.gz"
MANIFEST_FILE = "bundle.json"
WHEELHOUSE_DIR = "wheelhouse"
INSTALL_SCRIPT = "install-app.sh"
# Records which app sources the wheelhouse was built from, to reuse it when nothing changed.
WHEELHOUSE_KEY_FILE = ".wheelhouse-key"
# Build leftovers and caches: not part of the app's sources.
IGNORED_NAMES = {"__pycache__", ".git", ".venv", "build", "dist", ".pytest_cache", ".mypy_cache"}
IGNORED_SUFFIXES = (".pyc", ".egg-info")
# Zip and tar timestamps (1980-01-01, the earliest zip allows) so rebuilds give the same bytes.
FIXED_EPOCH = 315532800


@dataclass(frozen=True)
class Bundle:
    """A built bundle and what bundle.json says about it."""

    path: Path
    wheelhouse: Path
    manifest: Path
    name: str
    version: str
    commit: str
    wheels: dict[str, str]  # wheel file name -> sha256
    cached: bool  # the wheelhouse was reused, pip did not run


def build_bundle(app_dir: Path, out_dir: Path, *, install_script: Path | None = None) -> Bundle:
    """Build (or reuse) the wheelhouse of the app in app_dir and pack it into out_dir."""
    app_dir = app_dir.resolve()
    name = _project_name(app_dir)
    script = install_script or ProjectPaths.of_checkout().root / "packer/scripts" / INSTALL_SCRIPT
    if not script.is_file():
        raise WebfleetError(f"The install script {script} is missing from the checkout.")
    out_dir.mkdir(parents=True, exist_ok=True)
    wheelhouse = out_dir / WHEELHOUSE_DIR
    key = _source_key(app_dir)
    cached = _wheelhouse_matches(out_dir, key)
    if not cached:
        _build_wheelhouse(app_dir, name, wheelhouse)
        (out_dir / WHEELHOUSE_KEY_FILE).write_text(key + "\n")

    wheels = {p.name: _sha256(p) for p in sorted(wheelhouse.glob("*.whl"))}
    version = _app_version(name, wheels)
    commit = _git_commit(app_dir)
    manifest = out_dir / MANIFEST_FILE
    manifest.write_text(
        json.dumps(
            {"name": name, "version": version, "commit": commit, "wheels": wheels},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    path = out_dir / BUNDLE_FILE
    _pack(path, manifest, script, wheelhouse)
    return Bundle(path, wheelhouse, manifest, name, version, commit, wheels, cached)


def _project_name(app_dir: Path) -> str:
    pyproject = app_dir / "pyproject.toml"
    try:
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
    except FileNotFoundError:
        raise WebfleetError(f"{pyproject} is missing: the app must be a Python project.") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as error:
        raise WebfleetError(f"{pyproject}: cannot read [project] name ({error}).") from None
    if not isinstance(name, str) or not name:
        raise WebfleetError(f"{pyproject}: [project] name must be a non-empty string.")
    return name


def _app_files(app_dir: Path) -> Iterator[Path]:
    for path in sorted(app_dir.rglob("*")):
        parts = path.relative_to(app_dir).parts
        if any(p in IGNORED_NAMES or p.endswith(IGNORED_SUFFIXES) for p in parts):
            continue
        if path.is_file():
            yield path


def _source_key(app_dir: Path) -> str:
    """Content hash of the app's files, and of what else decides which wheels pip picks."""
    digest = hashlib.sha256(f"python{sys.version_info[:2]}\n".encode())
    for path in _app_files(app_dir):
        digest.update(path.relative_to(app_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _wheelhouse_matches(out_dir: Path, key: str) -> bool:
    key_file = out_dir / WHEELHOUSE_KEY_FILE
    wheelhouse = out_dir / WHEELHOUSE_DIR
    return (
        key_file.is_file() and key_file.read_text().strip() == key and any(wheelhouse.glob("*.whl"))
    )


def _build_wheelhouse(app_dir: Path, name: str, wheelhouse: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="webfleet-bundle-") as tmp:
        # Build from a copy: pip builds local projects in place and leaves build/ and egg-info.
        source = Path(tmp) / "src"
        for path in _app_files(app_dir):
            target = source / path.relative_to(app_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        staging = Path(tmp) / WHEELHOUSE_DIR
        command = [
            sys.executable, "-m", "pip", "wheel", "--wheel-dir", str(staging),
            "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
            str(source),
        ]  # fmt: skip
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(FIXED_EPOCH)}
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise WebfleetError(_pip_failure(name, result.stdout + result.stderr))
        # Swap in whole: an interrupted build never leaves a half-filled wheelhouse behind.
        shutil.rmtree(wheelhouse, ignore_errors=True)
        shutil.move(staging, wheelhouse)


def _pip_failure(name: str, output: str) -> str:
    missing = re.search(
        r"(?:No matching distribution found for|satisfies the requirement) ([^\s(]+)", output
    )
    lines = output.strip().splitlines()
    # pip's ERROR lines say what failed; without any, its last lines are the best clue.
    tail = "\n".join([line for line in lines if line.startswith("ERROR")] or lines[-8:])
    if missing:
        return (
            f"pip could not get {missing.group(1)} (needed by {name}). Building the app bundle "
            "needs this machine's package index (pip config or PIP_INDEX_URL); instances then "
            f"install offline from the bundle.\npip said:\n{tail}"
        )
    return (
        f"pip could not build the wheels of {name} and its dependencies. Check the app's "
        "pyproject.toml, and that this machine reaches its package index (pip config or "
        f"PIP_INDEX_URL).\npip said:\n{tail}"
    )


def _normalize(name: str) -> str:
    # Wheel file names use the PEP 503 normalized name with "_" for separators.
    return re.sub(r"[-_.]+", "_", name).lower()


def _app_version(name: str, wheels: dict[str, str]) -> str:
    for wheel in wheels:
        dist, version, *_ = wheel.split("-")
        if _normalize(dist) == _normalize(name):
            return version
    raise WebfleetError(f"pip built no wheel for {name}: found only {sorted(wheels) or 'none'}.")


def _git_commit(app_dir: Path) -> str:
    """The last commit that touched the app dir, or "unknown" outside git (or before a commit)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(app_dir), "log", "-1", "--format=%H", "--", "."],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return "unknown"
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pack(path: Path, manifest: Path, script: Path, wheelhouse: Path) -> None:
    """Write the tarball with fixed order, owners and times, so the same inputs give equal bytes."""
    members = [(manifest, MANIFEST_FILE, 0o644), (script, INSTALL_SCRIPT, 0o755)]
    members += [(p, f"{WHEELHOUSE_DIR}/{p.name}", 0o644) for p in sorted(wheelhouse.glob("*.whl"))]
    partial = path.with_name(path.name + ".partial")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        directory = tarfile.TarInfo(WHEELHOUSE_DIR)
        directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o755, FIXED_EPOCH
        tar.addfile(directory)
        for source, arcname, mode in members:
            info = tarfile.TarInfo(arcname)
            info.size, info.mode, info.mtime = source.stat().st_size, mode, FIXED_EPOCH
            with source.open("rb") as file:
                tar.addfile(info, file)
    partial.replace(path)
