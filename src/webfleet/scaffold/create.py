"""init from start to end: detect the app, fill the template, write the file, load it back."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from webfleet.config import EnvironmentStack, Name, Port, StackError, UrlPath, load_stack
from webfleet.errors import WebfleetError
from webfleet.scaffold.detect import detect
from webfleet.scaffold.names import app_name
from webfleet.scaffold.proposal import About, Note, Proposal
from webfleet.scaffold.stack_file import StackDraft, render
from webfleet.scaffold.write import FileExistsRefusal, write_new


class InitOptionError(WebfleetError):
    """An init option whose value the stack file could not hold."""


class InvalidStackWritten(WebfleetError):
    """init made a stack file that does not validate: a bug in webfleet, not the user's."""


@dataclass(frozen=True)
class InitOptions:
    """What the user chose instead of what detection proposes (None: the proposal)."""

    runtime: str | None = None
    name: str | None = None
    port: int | str | None = None
    health_check_path: str | None = None


@dataclass(frozen=True)
class Created:
    path: Path
    draft: StackDraft
    stack: EnvironmentStack
    # The directory's name, when app.name had to differ from it.
    renamed_from: str | None


def create_stack_file(
    app_dir: Path, stack_path: Path, options: InitOptions, project_root: Path
) -> Created:
    """Write a new stack file for the app in app_dir at stack_path (relative: to app_dir)."""
    path = stack_path if stack_path.is_absolute() else app_dir / stack_path
    if path.exists() or path.is_symlink():
        raise FileExistsRefusal(path)
    if not app_dir.is_dir():
        raise InitOptionError(f"{app_dir}: not a directory")
    directory_name = app_dir.resolve().name
    name = _checked("--name", options.name, Name, _NAME_RULE) or app_name(directory_name)
    proposal = _overridden(detect(app_dir, options.runtime), options)
    source = Path(os.path.relpath(app_dir.resolve(), path.parent.resolve())).as_posix()
    proposal = _warn_if_published(proposal, app_dir, path)
    draft = StackDraft(name=name, source=source, proposal=proposal)
    write_new(path, render(draft, project_root), check=_validates)
    try:
        stack = load_stack(path)
    except StackError as error:
        raise InvalidStackWritten(
            f"{path} was written but does not validate (a bug in webfleet init, please report "
            f"it; the file is left as written):\n{error}"
        ) from None
    renamed = directory_name if options.name is None and name != directory_name else None
    return Created(path, draft, stack, renamed)


_NAME_RULE = "lowercase letters, digits and '-', starting with a letter, at most 20 characters"


def _checked(option: str, value: Any, annotation: Any, rule: str) -> Any:
    if value is None:
        return None
    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError:
        raise InitOptionError(f"{option} {value!r}: must be {rule}") from None


def _overridden(proposal: Proposal, options: InitOptions) -> Proposal:
    port = options.port
    if isinstance(port, str):
        try:
            port = int(port)
        except ValueError:
            raise InitOptionError(f"--port {port!r}: must be a number from 1 to 65535") from None
    port = _checked("--port", port, Port, "a number from 1 to 65535")
    path = _checked(
        "--health-check-path",
        options.health_check_path,
        UrlPath,
        "a URL path starting with '/', without spaces",
    )
    if port is not None:
        proposal = replace(proposal, port=port, notes=_noted(proposal, "port", "set with --port"))
    if path is not None:
        notes = _noted(proposal, "health_check_path", "set with --health-check-path")
        proposal = replace(proposal, health_check_path=path, notes=notes)
    return proposal


def _noted(proposal: Proposal, about: About, why: str) -> tuple[Note, ...]:
    """The notes with those about a value replaced by why the user's value is there."""
    return (*(note for note in proposal.notes if note.about != about), Note(about, why))


def _warn_if_published(proposal: Proposal, app_dir: Path, path: Path) -> Proposal:
    """A static site served from the stack file's own directory would publish the file."""
    if proposal.runtime != "static":
        return proposal
    served = (app_dir / proposal.document_root).resolve()
    if not path.resolve().is_relative_to(served):
        return proposal
    warning = Note(
        "document_root",
        f"nginx serves {proposal.document_root!r} whole, {path.name} included: move the site "
        "into a directory of its own (e.g. public/) and set document_root to it",
        warning=True,
    )
    return replace(proposal, notes=(*proposal.notes, warning))


def _validates(candidate: Path) -> None:
    try:
        load_stack(candidate)
    except StackError as error:
        problems = "\n".join(f"  - {problem}" for problem in error.problems)
        raise InvalidStackWritten(
            "webfleet init made a stack file that does not validate (a bug in webfleet init, "
            f"please report it); nothing was written:\n{problems}"
        ) from None
