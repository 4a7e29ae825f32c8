"""The app's own files: which of app.source go into the bundle, copied and hashed reproducibly."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from webfleet.config import Runtime

# Never the app's: version control and webfleet's own artifacts (.webfleet/ beside the stack).
IGNORED_ALWAYS = frozenset({".git", ".hg", ".svn", ".webfleet", ".DS_Store"})
# Rebuilt or installed from the bundle's dependencies on the instance, or caches.
IGNORED_BY_RUNTIME: dict[str, frozenset[str]] = {
    "python": frozenset(
        {"__pycache__", ".venv", "venv", "build", "dist", ".pytest_cache", ".mypy_cache", ".tox"}
    ),
    "node": frozenset({"node_modules", ".npm"}),
    "static": frozenset(),
    "binary": frozenset(),
}
IGNORED_SUFFIXES: dict[str, tuple[str, ...]] = {"python": (".pyc", ".egg-info")}


def app_files(app_dir: Path, runtime: Runtime, *, exclude: Iterable[Path] = ()) -> list[Path]:
    """The files (and symlinks) under app_dir that belong in the bundle, in a fixed order."""
    names = IGNORED_ALWAYS | IGNORED_BY_RUNTIME[runtime]
    suffixes = IGNORED_SUFFIXES.get(runtime, ())
    excluded = [path.resolve() for path in exclude]
    found = []
    for path in sorted(app_dir.rglob("*")):
        parts = path.relative_to(app_dir).parts
        if any(part in names or part.endswith(suffixes) for part in parts):
            continue
        resolved = path.resolve()
        if any(resolved == skip or skip in resolved.parents for skip in excluded):
            continue
        if path.is_symlink() or path.is_file():
            found.append(path)
    return found


def content_key(app_dir: Path, files: Sequence[Path], inputs: Iterable[str]) -> str:
    """A hash of the files (names, bytes, executable bit) and of the other inputs of a build."""
    digest = hashlib.sha256()
    for value in inputs:
        digest.update(value.encode() + b"\0")
    for path in files:
        digest.update(path.relative_to(app_dir).as_posix().encode() + b"\0")
        if path.is_symlink():
            digest.update(b"link:" + str(path.readlink()).encode() + b"\0")
        else:
            digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def copy_files(app_dir: Path, files: Sequence[Path], target: Path) -> None:
    """Copy the files into target, keeping relative paths, symlinks and modes."""
    for path in files:
        destination = target / path.relative_to(app_dir)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination, follow_symlinks=False)
