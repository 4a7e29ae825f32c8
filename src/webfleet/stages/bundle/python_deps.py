"""A python app's dependencies as wheels, built on this machine for the image's Python.

From requirements.txt (pinned, `--hash` honoured: a lock exported by pip-compile, uv or poetry)
and/or pyproject.toml (the project itself as a wheel; its dependencies too when no
requirements.txt pins them). The instance installs exactly the wheelhouse, offline.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from webfleet.errors import WebfleetError

REQUIREMENTS = "requirements.txt"
PYPROJECT = "pyproject.toml"
# Lock files pip cannot read, and the command that exports each as requirements.txt.
FOREIGN_LOCKS = {
    "uv.lock": "uv export --format requirements-txt --no-emit-project > requirements.txt",
    "poetry.lock": "poetry export --format requirements.txt > requirements.txt",
    "Pipfile.lock": "pipenv requirements --hash > requirements.txt",
}
# Zip timestamps for wheels pip builds, so rebuilds give the same bytes.
SOURCE_DATE_EPOCH = "315532800"


@dataclass(frozen=True)
class PythonProject:
    """What decides a python app's wheels: its requirements and/or its own project."""

    requirements: bool
    name: str | None  # [project] name of pyproject.toml, if the app is a project
    version: str | None


def python_project(app_dir: Path, where: str) -> PythonProject:
    """The app's dependency files, checked; `where` names the stack field for errors."""
    requirements = (app_dir / REQUIREMENTS).is_file()
    pyproject = app_dir / PYPROJECT
    if not pyproject.is_file():
        if not requirements:
            raise WebfleetError(_no_dependency_file(app_dir, where))
        return PythonProject(True, None, None)
    try:
        project = tomllib.loads(pyproject.read_text())["project"]
        name, version = project["name"], project.get("version")
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as error:
        if requirements:
            return PythonProject(True, None, None)  # a tool config only, not a project
        raise WebfleetError(f"{pyproject}: cannot read [project] name ({error}).") from None
    if not isinstance(name, str) or not name:
        raise WebfleetError(f"{pyproject}: [project] name must be a non-empty string.")
    return PythonProject(requirements, name, version if isinstance(version, str) else None)


def _no_dependency_file(app_dir: Path, where: str) -> str:
    locks = [name for name in FOREIGN_LOCKS if (app_dir / name).is_file()]
    if locks:
        return (
            f"{where}: {app_dir} has {locks[0]} but no requirements.txt; export the lock for "
            f"pip, in {app_dir}: {FOREIGN_LOCKS[locks[0]]}"
        )
    return (
        f"{where}: {app_dir} has no requirements.txt or pyproject.toml; a python app lists its "
        "dependencies in one (e.g. `pip freeze > requirements.txt` in its venv)"
    )


def build_wheelhouse(app_dir: Path, project: PythonProject, wheelhouse: Path) -> None:
    """pip wheel the app's dependencies (and the project) into wheelhouse (app_dir: a copy)."""
    base = [
        sys.executable, "-m", "pip", "wheel", "--wheel-dir", str(wheelhouse),
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
    ]  # fmt: skip
    what = project.name or app_dir.name
    if project.requirements:
        _pip([*base, "--requirement", str(app_dir / REQUIREMENTS)], what, app_dir)
    if project.name is not None:
        # With requirements.txt, that file pins the dependencies: the project alone.
        extra = ["--no-deps"] if project.requirements else []
        _pip([*base, *extra, str(app_dir)], what, app_dir)


def _pip(command: list[str], what: str, cwd: Path) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        raise WebfleetError(pip_failure(what, result.stdout + result.stderr))


def pip_failure(name: str, output: str) -> str:
    missing = re.search(
        r"(?:No matching distribution found for|satisfies the requirement) ([^\s(]+)", output
    )
    lines = output.strip().splitlines()
    # pip's ERROR lines say what failed; without any, its last lines are the best clue.
    tail = "\n".join([line for line in lines if line.startswith("ERROR")] or lines[-8:])
    if "THESE PACKAGES DO NOT MATCH THE HASHES" in output or "Hashes are required" in output:
        return (
            f"pip refused a download of {name}'s requirements: its hash is not the one "
            f"requirements.txt pins (or a requirement has no hash). Re-lock the file.\n"
            f"pip said:\n{tail}"
        )
    if missing:
        return (
            f"pip could not get {missing.group(1)} (needed by {name}). Building the app bundle "
            "needs this machine's package index (pip config or PIP_INDEX_URL); instances then "
            f"install offline from the bundle.\npip said:\n{tail}"
        )
    return (
        f"pip could not build the wheels of {name} and its dependencies. Check the app's "
        "requirements.txt or pyproject.toml, and that this machine reaches its package index "
        f"(pip config or PIP_INDEX_URL).\npip said:\n{tail}"
    )


def normalize(name: str) -> str:
    # Wheel file names use the PEP 503 normalized name with "_" for separators.
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_version(name: str, wheels: list[str]) -> str:
    """The version of the project's own wheel among the built ones."""
    for wheel in wheels:
        dist, version, *_ = wheel.split("-")
        if normalize(dist) == normalize(name):
            return version
    raise WebfleetError(f"pip built no wheel for {name}: found only {sorted(wheels) or 'none'}.")
