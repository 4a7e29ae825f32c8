"""Which runtime an app's directory holds, and what to propose for it.

pyproject.toml or requirements.txt: python; package.json: node; index.html alone: static. A
binary app is never guessed: --runtime binary says so.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import get_args

from webfleet.config import START_EXAMPLES, Runtime
from webfleet.errors import WebfleetError
from webfleet.scaffold import health, node_app, python_app
from webfleet.scaffold.proposal import Note, Proposal

RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
# What each detected runtime is recognised by, in the order they are tried.
MARKERS: dict[Runtime, tuple[str, ...]] = {
    "python": ("pyproject.toml", "requirements.txt"),
    "node": ("package.json",),
    "static": ("index.html",),
}
# Where a static site's index.html may be: the top of its directory, or one of these.
_DOCUMENT_ROOTS = (".", "public", "dist", "build", "site", "_site", "out", "www")
BINARY_PORT = 8080
STATIC_PORT = 80


class DetectError(WebfleetError):
    """A directory whose app is not recognised, or a runtime webfleet does not know."""


def detect(app_dir: Path, runtime: str | None = None) -> Proposal:
    """The proposal for the app in app_dir: of the given runtime, or of the one detected."""
    if runtime is not None and runtime not in RUNTIMES:
        raise DetectError(
            f"--runtime {runtime!r}: not a runtime webfleet knows (one of {', '.join(RUNTIMES)})"
        )
    found = [name for name, markers in MARKERS.items() if _has_any(app_dir, markers)]
    if not found and _document_roots(app_dir):
        found = ["static"]
    chosen: str | None = runtime if runtime is not None else next(iter(found), None)
    if chosen is None:
        looked_for = "; ".join(f"{' or '.join(m)} ({name})" for name, m in MARKERS.items())
        looked_for += f" or in {', '.join(r + '/' for r in _DOCUMENT_ROOTS[1:])}"
        raise DetectError(
            f"{app_dir}: no app recognised. Looked for {looked_for}. "
            f"Run init in the app's directory, or pass --runtime ({'|'.join(RUNTIMES)}) "
            "to choose one"
        )
    proposal = _propose(app_dir, chosen)
    notes = list(proposal.notes)
    if runtime is not None and chosen in MARKERS and chosen not in found:
        notes.append(
            Note(
                "app",
                f"no {' or '.join(MARKERS[chosen])} in {app_dir}: the {chosen} runtime needs it",
                warning=True,
            )
        )
    others = [name for name in found if name != chosen and name != "static"]
    if runtime is None and others:
        notes.append(
            Note("app", f"also looks like a {others[0]} app: init --runtime {others[0]} for that")
        )
    return replace(proposal, notes=tuple(notes))


def _propose(app_dir: Path, runtime: str) -> Proposal:
    if runtime == "python":
        return python_app.propose(app_dir)
    if runtime == "node":
        return node_app.propose(app_dir)
    if runtime == "static":
        return _static(app_dir)
    return _binary(app_dir)


def _static(app_dir: Path) -> Proposal:
    roots = _document_roots(app_dir)
    notes: list[Note] = []
    if roots and roots[0] != ".":
        notes.append(Note("document_root", f"the directory with index.html ({roots[0]}/)"))
    elif not roots:
        notes.append(
            Note("document_root", "no index.html found: name the directory to serve", warning=True)
        )
    return Proposal(
        runtime="static",
        detected="static site",
        start=None,
        port=STATIC_PORT,
        health_check_path="/",
        document_root=roots[0] if roots else ".",
        notes=tuple(notes),
    )


def _binary(app_dir: Path) -> Proposal:
    executables = sorted(
        entry.name
        for entry in _entries(app_dir)
        if entry.is_file() and not entry.name.startswith(".") and os.access(entry, os.X_OK)
    )
    if len(executables) == 1:
        start = f"./{executables[0]}"
        note = Note(
            "start",
            f"the directory's one executable; add what makes it listen on $PORT "
            f"(e.g. {START_EXAMPLES['binary']})",
            warning=True,
        )
    else:
        start = START_EXAMPLES["binary"]
        note = Note(
            "start", "a placeholder: the command that starts your server on $PORT", warning=True
        )
    return Proposal(
        runtime="binary",
        detected="prebuilt executable",
        start=start,
        port=BINARY_PORT,
        health_check_path=health.DEFAULT_PATH,
        notes=(
            note,
            Note(
                "health_check_path",
                "point this at a route your server really answers with 200",
                warning=True,
            ),
        ),
    )


def _document_roots(app_dir: Path) -> list[str]:
    return [root for root in _DOCUMENT_ROOTS if (app_dir / root / "index.html").is_file()]


def _has_any(app_dir: Path, names: tuple[str, ...]) -> bool:
    return any((app_dir / name).is_file() for name in names)


def _entries(app_dir: Path) -> list[Path]:
    try:
        return list(app_dir.iterdir())
    except OSError:
        return []
