"""What detection proposes for the [app] section, and the notes that explain it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from webfleet.config import Runtime

# The key a note is written above in the stack file ("app": the section's head).
About = Literal["app", "start", "port", "health_check_path", "build", "document_root"]


@dataclass(frozen=True)
class Note:
    """One line of explanation: a comment in the stack file and a line of init's output."""

    about: About
    text: str
    # Something the user must check or fix before the app can run (CHECK: in the file).
    warning: bool = False


@dataclass(frozen=True)
class Proposal:
    """The [app] values proposed for a directory's app, with why each was chosen."""

    runtime: Runtime
    # What was recognised, for the output: "Django", "Flask", "package.json", ...
    detected: str
    start: str | None
    port: int
    health_check_path: str
    # Suggested, written commented out: app.build runs on this machine before bundling.
    build: str | None = None
    document_root: str = "."
    notes: tuple[Note, ...] = field(default_factory=tuple)

    def notes_about(self, about: About) -> list[Note]:
        return [note for note in self.notes if note.about == about]

    @property
    def warnings(self) -> list[Note]:
        return [note for note in self.notes if note.warning]
