"""Live progress for long work: stages, and Terraform's and Packer's UI streams as they happen.

On a terminal a live line shows the resources in flight (or Packer's current step) with their
elapsed time; elsewhere (CI, pipes, `--json`) the same events are printed as plain lines on stderr.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from webfleet.drivers.packer import PackerEvent, UiEvent

_ACTION_WORDS = {
    "create": ("Creating", "created"),
    "update": ("Updating", "updated"),
    "delete": ("Destroying", "destroyed"),
    "replace": ("Replacing", "replaced"),
    "read": ("Reading", "read"),
    "noop": ("Checking", "checked"),
}
_PLAN_SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+", "read": "<="}


@dataclass
class _InFlight:
    action: str
    started: float = field(default_factory=time.monotonic)


class Progress:
    """Shows stages and Terraform events; use as a context manager around the long work."""

    def __init__(self, console: Console | None = None, *, live: bool | None = None) -> None:
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.live_enabled = self.console.is_terminal if live is None else live
        self._stage = ""
        self._in_flight: dict[str, _InFlight] = {}
        # Packer's latest step ("say" line) and when it began, and its latest output line.
        self._packer_step: tuple[str, float] | None = None
        self._packer_output = ""
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.live_enabled:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=4, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, value, traceback)
            self._live = None

    def stage(self, name: str, detail: str = "") -> None:
        self._stage = name
        self._in_flight.clear()
        self._packer_step = None
        self._packer_output = ""
        self.console.print(Text.assemble(("▶ ", "bold cyan"), (name, "bold"), f" {detail}"))
        self._refresh()

    def note(self, message: str, style: str = "") -> None:
        self.console.print(Text(f"  {message}", style=style))

    def terraform_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        hook = event.get("hook", {})
        address = hook.get("resource", {}).get("addr", "")
        if kind == "apply_start":
            action = hook.get("action", "")
            self._in_flight[address] = _InFlight(action)
        elif kind == "apply_complete":
            flight = self._in_flight.pop(address, None)
            action = hook.get("action", flight.action if flight else "")
            done = _ACTION_WORDS.get(action, (action, action))[1]
            seconds = hook.get("elapsed_seconds", 0)
            self.note(f"✓ {address} {done} ({seconds}s)", "green")
        elif kind == "apply_errored":
            self._in_flight.pop(address, None)
            self.note(f"✗ {address} failed", "bold red")
        elif kind == "planned_change":
            change = event.get("change", {})
            action = change.get("action", "")
            planned = change.get("resource", {}).get("addr", "")
            self.note(f"{_PLAN_SYMBOLS.get(action, action)} {planned}", _plan_style(action))
        elif kind == "diagnostic":
            level = event.get("@level", "")
            summary = event.get("diagnostic", {}).get("summary", event.get("@message", ""))
            self.note(f"{level}: {summary}", "bold red" if level == "error" else "yellow")
        elif kind == "change_summary":
            self.note(event.get("@message", ""), "bold")
        self._refresh()

    def packer_event(self, event: PackerEvent) -> None:
        """Packer's UI: steps and errors are printed; provisioner output only without a TTY
        (on a terminal the live line shows the latest of it; the log keeps it all)."""
        if not isinstance(event, UiEvent):
            return
        text = event.text.strip()
        if not text:
            return
        # Continuation lines (e.g. an AMI filter Packer prints) stay under the first one.
        shown = text.replace("\n", "\n  ")
        if event.level == "error":
            self.note(shown, "bold red")
        elif event.level == "say":
            self._packer_step = (text.splitlines()[0], time.monotonic())
            self._packer_output = ""
            self.note(shown)
        else:
            if self._live is None:
                self.note(shown, "dim")
            self._packer_output = text.splitlines()[-1]
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Group:
        now = time.monotonic()
        lines: list[Spinner | Text] = []
        for address, flight in sorted(self._in_flight.items()):
            verb = _ACTION_WORDS.get(flight.action, (flight.action, ""))[0]
            elapsed = int(now - flight.started)
            lines.append(Spinner("dots", Text(f" {verb} {address} ({elapsed}s)")))
        if not lines and self._packer_step is not None:
            step, started = self._packer_step
            lines.append(Spinner("dots", Text(f" {step} ({int(now - started)}s)")))
            if self._packer_output:
                lines.append(
                    Text(
                        f"   {self._packer_output}", style="dim", no_wrap=True, overflow="ellipsis"
                    )
                )
        if not lines and self._stage:
            lines.append(Spinner("dots", Text(f" {self._stage}")))
        return Group(*lines)


def _plan_style(action: str) -> str:
    return {"create": "green", "update": "yellow", "delete": "red", "replace": "magenta"}.get(
        action, ""
    )
