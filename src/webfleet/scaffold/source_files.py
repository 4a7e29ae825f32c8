"""Reading an app's own source files: bounded in size and depth, never its venvs or builds."""

from __future__ import annotations

import keyword
from collections.abc import Iterator
from pathlib import Path

# Bigger files are generated or vendored: not where an app is declared.
MAX_BYTES = 512 * 1024
SKIPPED_DIRS = frozenset(
    {
        "node_modules",
        "venv",
        "env",
        "site-packages",
        "build",
        "dist",
        "tests",
        "test",
        "migrations",
        "static",
        "staticfiles",
        "templates",
    }
)


def read_text(path: Path) -> str:
    """The file's text, or "" when it is missing, too big or not UTF-8."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            return ""
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def is_module_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def python_modules(root: Path, depth: int = 2) -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) for the .py files of root and its packages, shallow first."""
    yield from _modules(root, (), depth)


def _modules(directory: Path, package: tuple[str, ...], depth: int) -> Iterator[tuple[str, Path]]:
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.suffix == ".py" and entry.is_file() and not _is_test_or_tool(entry.name):
            stem = entry.stem
            if stem == "__init__" and package:
                yield ".".join(package), entry
            elif is_module_name(stem):
                yield ".".join((*package, stem)), entry
    if depth == 0:
        return
    for entry in entries:
        if (
            entry.is_dir()
            and is_module_name(entry.name)
            and entry.name not in SKIPPED_DIRS
            and (entry / "__init__.py").is_file()
        ):
            yield from _modules(entry, (*package, entry.name), depth - 1)


def _is_test_or_tool(name: str) -> bool:
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name in ("conftest.py", "setup.py", "manage.py", "noxfile.py", "tasks.py")
    )
