"""A node app: package.json checked, `npm ci --omit=dev` on this machine, Node from Debian.

The instance runs Debian's nodejs (no npm there), so node_modules is installed here and shipped;
package.json's engines.node must accept the Node.js version of the image's release.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semantic_version

from webfleet.errors import WebfleetError

PACKAGE_JSON = "package.json"
LOCK_FILES = ("package-lock.json", "npm-shrinkwrap.json")
# Files under node_modules npm ci writes that differ between runs and are not needed.
_UNSTABLE = (".package-lock.json",)


@dataclass(frozen=True)
class NodeProject:
    name: str | None
    version: str | None
    engines_node: str | None  # package.json's engines.node range, if any


def node_project(app_dir: Path, where: str) -> NodeProject:
    """package.json and its lock file, checked; `where` names the stack field for errors."""
    manifest = app_dir / PACKAGE_JSON
    if not manifest.is_file():
        raise WebfleetError(f"{where}: {app_dir} has no package.json; a node app is an npm package")
    try:
        data: Any = json.loads(manifest.read_text())
    except json.JSONDecodeError as error:
        raise WebfleetError(f"{manifest}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise WebfleetError(f"{manifest}: must be a JSON object")
    if not any((app_dir / lock).is_file() for lock in LOCK_FILES):
        raise WebfleetError(
            f"{where}: {app_dir} has no package-lock.json; the bake installs exactly the lock "
            f"(npm ci). Run `npm install` in {app_dir} and commit package-lock.json."
        )
    engines = data.get("engines")
    engines_node = engines.get("node") if isinstance(engines, dict) else None
    name, version = data.get("name"), data.get("version")
    return NodeProject(
        name if isinstance(name, str) else None,
        version if isinstance(version, str) else None,
        engines_node if isinstance(engines_node, str) else None,
    )


def upstream_version(debian_version: str) -> str:
    """Node's own version in a Debian one: 18.20.4+dfsg-1~deb12u2 -> 18.20.4."""
    match = re.match(r"^(?:\d+:)?(\d+\.\d+\.\d+)", debian_version)
    if match is None:
        raise WebfleetError(f"cannot read a Node.js version from Debian's {debian_version!r}")
    return match.group(1)


def check_engines(project: NodeProject, node_version: str, release_name: str) -> None:
    """Fail unless package.json's engines.node accepts the image's Node.js."""
    if project.engines_node is None:
        return
    try:
        spec = semantic_version.NpmSpec(project.engines_node)
    except ValueError as error:
        raise WebfleetError(
            f"package.json engines.node {project.engines_node!r} is not a version range ({error})"
        ) from None
    if not spec.match(semantic_version.Version(node_version)):
        raise WebfleetError(
            f"package.json engines.node is {project.engines_node!r}, but the image runs Node.js "
            f"{node_version} (Debian {release_name}'s nodejs package). Widen engines.node to "
            "accept it, or use a base image (image.base_ami) whose Debian release has a Node.js "
            "your app supports."
        )


def install_modules(app_dir: Path) -> None:
    """npm ci --omit=dev in app_dir (a copy of the app): its node_modules go into the bundle."""
    npm = shutil.which("npm")
    if npm is None:
        raise WebfleetError(
            "npm is not installed on this machine; a node app's modules are installed here "
            "before the bake (Debian package: npm)."
        )
    command = [npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"]
    result = subprocess.run(command, cwd=app_dir, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise WebfleetError(
            "npm ci failed for the app's package-lock.json (it must match package.json, and "
            f"this machine must reach the npm registry).\nnpm said:\n{tail}"
        )
    for name in _UNSTABLE:
        (app_dir / "node_modules" / name).unlink(missing_ok=True)
