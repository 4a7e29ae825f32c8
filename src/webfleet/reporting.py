"""How stages tell their user what is happening without printing: the `Reporter` protocol.

Stages call a Reporter; only `webfleet.cli` implements it (live display, plain lines, JSON mode),
so a stage runs the same under invoke, in a test, or from another program.
"""

from __future__ import annotations

from typing import Any, Protocol

from webfleet.drivers.packer import PackerEvent


class Reporter(Protocol):
    def stage(self, name: str, detail: str = "") -> None:
        """A new step of the work begins."""

    def note(self, message: str, style: str = "") -> None:
        """One line about the current step; style is a hint ("bold", "green", "yellow")."""

    def terraform_event(self, event: dict[str, Any]) -> None:
        """One event of Terraform's -json UI stream."""

    def packer_event(self, event: PackerEvent) -> None:
        """One event of Packer's machine-readable stream."""
