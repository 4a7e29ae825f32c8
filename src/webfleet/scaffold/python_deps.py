"""The distributions a Python app declares: pyproject.toml's and requirements.txt's names."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A requirement's distribution name (PEP 508), before extras, versions and markers.
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_INCLUDE = re.compile(r"^\s*(?:-r|--requirement)[\s=]+(\S+)")


@dataclass(frozen=True)
class Dependencies:
    names: frozenset[str]
    # Where they were read, for messages: "pyproject.toml [project] dependencies", ...
    sources: tuple[str, ...]

    def declares(self, distribution: str) -> bool:
        return normalize(distribution) in self.names

    def describe_sources(self) -> str:
        return (
            " and ".join(self.sources) if self.sources else "no pyproject.toml or requirements.txt"
        )


def normalize(name: str) -> str:
    """PEP 503's normal form: case and runs of -_. do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(app_dir: Path) -> Dependencies:
    names: set[str] = set()
    sources: list[str] = []
    pyproject = app_dir / "pyproject.toml"
    if pyproject.is_file():
        names |= _pyproject_names(pyproject)
        sources.append("pyproject.toml")
    requirements = app_dir / "requirements.txt"
    if requirements.is_file():
        names |= _requirements_names(requirements, seen=set())
        sources.append("requirements.txt")
    return Dependencies(frozenset(normalize(name) for name in names), tuple(sources))


def _pyproject_names(path: Path) -> set[str]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return set()
    project = _table(document.get("project"))
    names = {_requirement_name(r) for r in _strings(project.get("dependencies"))}
    # Poetry's own table: its keys are the names ("python" is the interpreter).
    poetry = _table(_table(document.get("tool")).get("poetry"))
    names |= {key for key in _table(poetry.get("dependencies")) if key.lower() != "python"}
    return {name for name in names if name}


def _requirements_names(path: Path, seen: set[Path]) -> set[str]:
    resolved = path.resolve()
    if resolved in seen or not path.is_file():
        return set()
    seen.add(resolved)
    names: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return names
    for line in lines:
        line = line.split(" #", 1)[0].strip()
        if include := _INCLUDE.match(line):
            names |= _requirements_names(path.parent / include.group(1), seen)
        elif line and not line.startswith(("#", "-")):
            names.add(_requirement_name(line))
    return {name for name in names if name}


def _requirement_name(requirement: str) -> str:
    match = _REQUIREMENT_NAME.match(requirement)
    return match.group(1) if match else ""


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
