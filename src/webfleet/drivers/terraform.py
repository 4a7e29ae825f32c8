"""A small typed driver over the installed Terraform CLI.

Why not python-terraform: unmaintained since 2019 and broken on Terraform 1.x (apply approval,
`destroy -force`, output by name). tftest is for tests. This wrapper runs the CLI with `-json`, so
every stage gets Terraform's machine-readable UI stream for live progress and exact change counts.

Terraform writes its stream to a log file under the environment's build directory and the driver
follows that file. Terraform runs in its own session: if webfleet is killed, Terraform is not, so it
finishes and saves state instead of dying on a broken pipe halfway through creating resources; the
next run waits for its state lock and converges.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webfleet.errors import WebfleetError

Event = dict[str, Any]
EventHandler = Callable[[Event], None]

# terraform/*/versions.tf require it: variable validations that refer to other variables.
MINIMUM_TERRAFORM = (1, 9)

# How long a run waits for a state lock held by an earlier, interrupted run that is still finishing.
LOCK_TIMEOUT = "10m"


class TerraformError(WebfleetError):
    """Terraform failed; the message carries its diagnostics."""


class TerraformMissingError(WebfleetError):
    """No usable Terraform on PATH."""


@dataclass(frozen=True)
class ChangeCounts:
    add: int = 0
    change: int = 0
    destroy: int = 0

    @property
    def any(self) -> bool:
        return bool(self.add or self.change or self.destroy)


@dataclass
class RunResult:
    """What one Terraform command reported through its JSON stream."""

    exit_code: int
    changes: ChangeCounts = field(default_factory=ChangeCounts)
    errors: list[str] = field(default_factory=list)
    log_path: Path | None = None


@dataclass(frozen=True)
class Workspace:
    """One root module applied for one environment: its config, data directory and state."""

    config_dir: Path
    data_dir: Path
    state_path: Path
    cli_config: Path
    environment: Mapping[str, str]
    log_dir: Path
    binary: str = "terraform"


class Terraform:
    def __init__(self, workspace: Workspace, on_event: EventHandler) -> None:
        self.workspace = workspace
        self.on_event = on_event

    def init(self) -> RunResult:
        # -upgrade=false and the CLI config's mirror: providers come from disk, never downloaded.
        return self._run(
            "init",
            [
                "init",
                "-input=false",
                "-json",
                f"-backend-config=path={self.workspace.state_path}",
                f"-lock-timeout={LOCK_TIMEOUT}",
            ],
        )

    def plan(
        self,
        var_file: Path,
        plan_file: Path,
        *,
        destroy: bool = False,
        targets: Sequence[str] = (),
    ) -> RunResult:
        """Plan into plan_file (only `targets` and what they need, if given); the result's
        changes say what an apply would do."""
        args = [
            "plan",
            "-input=false",
            "-json",
            "-detailed-exitcode",
            f"-lock-timeout={LOCK_TIMEOUT}",
            f"-var-file={var_file}",
            f"-out={plan_file}",
        ]
        if destroy:
            args.append("-destroy")
        args += [f"-target={address}" for address in targets]
        # -detailed-exitcode: 0 no changes, 2 changes, 1 error.
        return self._run("plan", args, ok_codes=(0, 2))

    def apply(self, plan_file: Path) -> RunResult:
        return self._run(
            "apply",
            ["apply", "-input=false", "-json", f"-lock-timeout={LOCK_TIMEOUT}", str(plan_file)],
        )

    def outputs(self) -> dict[str, Any]:
        raw: dict[str, dict[str, Any]] = json.loads(self._capture("output", ["-json"]) or "{}")
        return {name: value["value"] for name, value in raw.items()}

    def show_plan(self, plan_file: Path) -> dict[str, Any]:
        """The saved plan as Terraform's JSON plan representation."""
        plan: dict[str, Any] = json.loads(self._capture("show", ["-json", str(plan_file)]))
        return plan

    def _capture(self, command: str, args: list[str]) -> str:
        """Run a short command that has no JSON stream; its stdout, or a TerraformError."""
        completed = subprocess.run(
            [self.workspace.binary, command, *args],
            cwd=self.workspace.config_dir,
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            detail = completed.stderr.strip() or completed.stdout.strip()
            raise TerraformError(f"terraform {command} failed:\n{detail}")
        return completed.stdout

    def has_state(self) -> bool:
        """True if the state records any resource (a destroyed stack's state holds none)."""
        return bool(self._state().get("resources"))

    def state_attributes(self, address: str) -> dict[str, Any] | None:
        """The attributes the state records for a single-instance resource at `address`
        (e.g. module.alb.aws_lb.this); None if the state has no such resource."""
        for resource in self._state().get("resources", []):
            parts = (resource.get("module"), resource["type"], resource["name"])
            found = ".".join(part for part in parts if part)
            instances = resource.get("instances") or []
            if resource.get("mode") == "managed" and found == address and instances:
                attributes: dict[str, Any] = instances[0].get("attributes") or {}
                return attributes
        return None

    def _state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(
                self.workspace.state_path.read_text(encoding="utf-8")
            )
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return state

    def _environment(self) -> dict[str, str]:
        self.workspace.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            **self.workspace.environment,
            "TF_CLI_CONFIG_FILE": str(self.workspace.cli_config),
            "TF_DATA_DIR": str(self.workspace.data_dir),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            # No version check against the internet.
            "CHECKPOINT_DISABLE": "1",
        }

    def _run(self, label: str, args: list[str], ok_codes: tuple[int, ...] = (0,)) -> RunResult:
        self.workspace.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.workspace.log_dir / f"terraform-{label}.jsonl"
        stderr_path = self.workspace.log_dir / f"terraform-{label}.stderr"
        result = RunResult(exit_code=-1, log_path=log_path)
        with log_path.open("w") as log, stderr_path.open("w") as stderr:
            process = subprocess.Popen(
                [self.workspace.binary, *args],
                cwd=self.workspace.config_dir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=stderr,
                start_new_session=True,
            )
            try:
                for event in _follow(log_path, process):
                    _record(event, result)
                    self.on_event(event)
            except KeyboardInterrupt:
                # Let Terraform stop gracefully: it finishes in-flight calls and saves state.
                process.send_signal(signal.SIGINT)
                for event in _follow(log_path, process):
                    self.on_event(event)
                raise
        result.exit_code = process.returncode
        if result.exit_code not in ok_codes:
            detail = "\n".join(result.errors) or stderr_path.read_text().strip()
            raise TerraformError(
                f"terraform {label} failed (exit {result.exit_code}):\n{detail}\n"
                f"full log: {log_path}"
            )
        return result


def _follow(path: Path, process: subprocess.Popen[bytes]) -> Iterator[Event]:
    """Yield each JSON event Terraform appends to path until the process exits."""
    with path.open("r") as stream:
        pending = ""
        while True:
            chunk = stream.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    line, pending = pending.strip(), ""
                    if line:
                        yield _parse(line)
                continue
            if process.poll() is not None:
                rest = (pending + stream.read()).strip()
                for line in rest.splitlines():
                    if line.strip():
                        yield _parse(line)
                return
            time.sleep(0.05)


def _parse(line: str) -> Event:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return {"type": "text", "@message": line}
    return event if isinstance(event, dict) else {"type": "text", "@message": line}


def _record(event: Event, result: RunResult) -> None:
    kind = event.get("type")
    if kind == "change_summary":
        changes = event.get("changes", {})
        result.changes = ChangeCounts(
            add=int(changes.get("add", 0)),
            change=int(changes.get("change", 0)),
            destroy=int(changes.get("remove", 0)),
        )
    elif kind == "diagnostic" and event.get("@level") == "error":
        diagnostic = event.get("diagnostic", {})
        where = diagnostic.get("address") or diagnostic.get("range", {}).get("filename", "")
        summary = diagnostic.get("summary", event.get("@message", ""))
        detail = diagnostic.get("detail", "")
        result.errors.append(" ".join(part for part in (f"[{where}]" if where else "", summary)))
        if detail:
            result.errors.append(f"  {detail}")


def terraform_version(binary: str = "terraform") -> str | None:
    """The installed Terraform's version, or None when it is not on PATH."""
    try:
        completed = subprocess.run(
            [binary, "version", "-json"],
            capture_output=True,
            text=True,
            check=False,
            # Without the ambient CLI config: only the version is asked, and it may not exist yet.
            env={
                **{k: v for k, v in os.environ.items() if k != "TF_CLI_CONFIG_FILE"},
                "CHECKPOINT_DISABLE": "1",
            },
        )
    except FileNotFoundError:
        return None
    try:
        version: str = json.loads(completed.stdout)["terraform_version"]
    except (json.JSONDecodeError, KeyError):
        return None
    return version


def check_terraform(binary: str = "terraform") -> None:
    """Raise unless a Terraform new enough for webfleet's modules is on PATH."""
    wanted = ".".join(map(str, MINIMUM_TERRAFORM))
    version = terraform_version(binary)
    if version is None:
        raise TerraformMissingError(
            f"terraform not found on PATH: install Terraform >= {wanted} (HashiCorp's release or "
            "package; Debian does not ship it) and re-run scripts/bootstrap."
        )
    found = tuple(int(part) for part in version.split(".")[:2])
    if found < MINIMUM_TERRAFORM:
        raise TerraformMissingError(
            f"terraform {version} is too old: webfleet needs >= {wanted} "
            "(check `terraform version`)."
        )
