"""A Node.js app: the `node <file>` that starts it (the instance has Debian's nodejs, no npm)
and the port its main file falls back to."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from webfleet.config import START_EXAMPLES
from webfleet.errors import WebfleetError
from webfleet.scaffold import health
from webfleet.scaffold.proposal import Note, Proposal
from webfleet.scaffold.source_files import read_text

PORT = 3000
# `node <file> [arguments]`: one plain command, nothing for a shell to combine.
_NODE_COMMAND = re.compile(r"^node\s+([^\s;&|<>`$()]+)[^\n;&|<>`]*$")
# process.env.PORT || 8080, process.env.PORT ?? "8080"
_PORT_FALLBACK = re.compile(r"""process\.env\.PORT\s*(?:\|\||\?\?)\s*["']?(\d{2,5})\b""")
_PATH_LITERAL = re.compile(r"""["'`](/[A-Za-z0-9._~/-]*)["'`]""")
_FALLBACK_MAINS = ("server.js", "index.js")


class PackageJsonError(WebfleetError):
    """A package.json that cannot be read as the app's manifest."""


def propose(app_dir: Path) -> Proposal:
    package = _package_json(app_dir / "package.json")
    scripts = _table(package.get("scripts"))
    notes: list[Note] = []
    start, main = _start(app_dir, package, scripts, notes)
    text = read_text(app_dir / main) if main is not None else ""
    port = PORT
    if fallback := _PORT_FALLBACK.search(text):
        port = int(fallback.group(1))
        notes.append(Note("port", f"the port {main} falls back to without $PORT"))
    path = health.pick(m.group(1) for m in _PATH_LITERAL.finditer(text))
    if path is not None:
        notes.append(Note("health_check_path", f"found a health-like route of the app in {main}"))
    else:
        path = health.DEFAULT_PATH
        notes.append(
            Note(
                "health_check_path",
                "point this at a route your app really serves with 200 (the load balancer "
                "replaces instances that fail it)",
                warning=True,
            )
        )
    if not (app_dir / "package-lock.json").is_file():
        notes.append(
            Note(
                "app",
                "package-lock.json is required (the bundle installs exactly what it locks): "
                "run `npm install` here to make it",
                warning=True,
            )
        )
    build = None
    if isinstance(scripts.get("build"), str):
        build = "npm run build"
        notes.append(Note("build", "package.json has a build script: enable this to run it"))
    return Proposal(
        runtime="node",
        detected="Node.js",
        start=start,
        port=port,
        health_check_path=path,
        build=build,
        notes=tuple(notes),
    )


def _start(
    app_dir: Path, package: dict[str, Any], scripts: dict[str, Any], notes: list[Note]
) -> tuple[str, str | None]:
    """The start command and the file it runs (None: a placeholder)."""
    script = scripts.get("start")
    if isinstance(script, str) and (command := _NODE_COMMAND.match(script.strip())):
        notes.append(Note("start", "from package.json's scripts.start"))
        main = command.group(1)
        if not (app_dir / main).is_file():
            notes.append(Note("start", f"{main} does not exist (yet?)", warning=True))
        return script.strip(), main
    if isinstance(script, str):
        notes.append(
            Note(
                "start",
                f"package.json's scripts.start ({script.strip()!r}) is not `node <file>`; "
                "the instance has no npm to run it",
                warning=True,
            )
        )
    declared = package.get("main")
    names = ([declared] if isinstance(declared, str) else []) + list(_FALLBACK_MAINS)
    for name in names:
        for candidate in (name, f"{name}.js"):
            if _NODE_COMMAND.match(f"node {candidate}") and (app_dir / candidate).is_file():
                relative = str((app_dir / candidate).relative_to(app_dir))
                what = "package.json's main" if name == declared else f"the app's {relative}"
                notes.append(Note("start", f"runs {what} with Debian's node"))
                return f"node {relative}", relative
    notes.append(
        Note(
            "start",
            "no main file found (package.json main, server.js, index.js): name the file "
            "that starts your server",
            warning=True,
        )
    )
    return START_EXAMPLES["node"], None


def _package_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PackageJsonError(f"{path}: cannot read it as JSON ({error})") from None
    if not isinstance(document, dict):
        raise PackageJsonError(f"{path}: expected a JSON object")
    return document


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
