"""The stack file init writes: templates/webfleet.toml.j2, filled with a proposal."""

from __future__ import annotations

import re
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path

import jinja2

from webfleet.errors import WebfleetError
from webfleet.scaffold.proposal import Note, Proposal
from webfleet.stages.render import jinja_environment

TEMPLATE = "templates/webfleet.toml.j2"
# The project's line length: comments wrap to it.
WIDTH = 99
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The VPC is 10.<octet>.0.0/16 with the octet from the app's name, in a range clear of the
# sample's and the examples' (10.42, 10.60-10.62).
VPC_OCTETS = range(64, 192)


class StackTemplateError(WebfleetError):
    """The stack file template is missing or broken."""


@dataclass(frozen=True)
class StackDraft:
    """What the stack file says: the app's name and directory, and the proposal for it."""

    name: str
    # app.source: the app's directory relative to the stack file's.
    source: str
    proposal: Proposal


def render(draft: StackDraft, project_root: Path) -> str:
    environment = jinja_environment(project_root)
    environment.filters["toml"] = toml_value
    environment.filters["comment"] = comment
    try:
        template = environment.get_template(TEMPLATE)
        return template.render(
            name=draft.name,
            source=draft.source,
            p=draft.proposal,
            vpc_octet=vpc_octet(draft.name),
        )
    except jinja2.TemplateNotFound:
        raise StackTemplateError(f"{project_root / TEMPLATE}: template not found") from None
    except jinja2.TemplateError as error:
        raise StackTemplateError(f"{TEMPLATE}: {error}") from None


def vpc_octet(name: str) -> int:
    """The second octet of the app's VPC CIDR: the same for the same name, spread over names."""
    return VPC_OCTETS[zlib.crc32(name.encode()) % len(VPC_OCTETS)]


def toml_value(value: str | int | bool) -> str:
    """A TOML literal: a basic string with every control character escaped, or a number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'


def comment(note: Note) -> str:
    """A note as comment lines: "CHECK:" first when it is a warning, wrapped to the width."""
    text = _CONTROL.sub(" ", note.text)
    if note.warning:
        text = f"CHECK: {text}"
    return "\n".join(
        textwrap.wrap(
            text,
            WIDTH,
            initial_indent="# ",
            subsequent_indent="#   ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        or ["#"]
    )
