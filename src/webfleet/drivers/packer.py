"""A small typed driver over the installed Packer CLI, in the style of webfleet.drivers.terraform.

Packer runs with `-machine-readable`: every line is `timestamp,target,type,data...`, which this
module turns into typed events for live progress and for the failure message. The raw stream goes
to a log file under the environment's build directory and the driver follows that file.

Packer runs in its own session. A Ctrl-C of webfleet is forwarded to Packer's process group as one
SIGINT, the way a terminal would deliver it (Packer's outer process ignores SIGINT and relies on
its wrapped child getting it too): Packer cancels the build and deletes what it made — builder
instance, temporary key pair, temporary security group. If webfleet itself is killed, Packer is
not: it writes to a file, not a pipe, so it runs to its end and cleans up on its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal, TextIO

from webfleet.errors import WebfleetError

# Debian's packer (1.6.6) is the oldest webfleet's template is written for; see packer/README.md.
MINIMUM_PACKER = (1, 6, 6)
# How many of Packer's last error lines a failure message quotes.
ERROR_LINES = 8

UiLevel = Literal["say", "message", "error"]
_UI_LEVELS: dict[str, UiLevel] = {"say": "say", "message": "message", "error": "error"}


class PackerError(WebfleetError):
    """Packer failed; the message carries its last errors."""


class PackerMissingError(WebfleetError):
    """No usable Packer on PATH."""


@dataclass(frozen=True)
class UiEvent:
    """A line of Packer's UI: `say` (a step), `message` (provisioner output) or `error`."""

    timestamp: int
    level: UiLevel
    text: str


@dataclass(frozen=True)
class ArtifactEvent:
    """One field of one artifact of a build, e.g. index 0, key "id", values ("us-east-1:ami-…",)."""

    timestamp: int
    target: str
    index: int
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class ErrorEvent:
    """The error a build (target) ended with."""

    timestamp: int
    target: str
    message: str


@dataclass(frozen=True)
class OtherEvent:
    """Any other line: artifact-count, error-count, version, ...; kind "text" if not parseable."""

    timestamp: int
    target: str
    kind: str
    data: tuple[str, ...]


PackerEvent = UiEvent | ArtifactEvent | ErrorEvent | OtherEvent
EventHandler = Callable[[PackerEvent], None]


@dataclass
class BuildResult:
    """What one `packer build` reported through its machine-readable stream."""

    exit_code: int
    log_path: Path
    # target -> artifact index -> key -> value (multi-valued keys joined with ",")
    artifacts: dict[str, dict[int, dict[str, str]]] = field(default_factory=dict)
    ui_errors: list[str] = field(default_factory=list)
    build_errors: list[str] = field(default_factory=list)

    def artifact_ids(self) -> list[str]:
        """The `id` of every artifact, e.g. "us-east-1:ami-0123456789abcdef0"."""
        ids = [
            fields["id"]
            for by_index in self.artifacts.values()
            for _, fields in sorted(by_index.items())
            if "id" in fields
        ]
        # The manifest post-processor passes the builder's artifact on: the same id twice.
        return list(dict.fromkeys(ids))


def unescape(field_text: str) -> str:
    """Undo the machine-readable escapes of one field: commas, newlines, carriage returns."""
    return field_text.replace("%!(PACKER_COMMA)", ",").replace("\\n", "\n").replace("\\r", "\r")


def parse_line(line: str) -> PackerEvent:
    """One machine-readable line as a typed event."""
    parts = line.rstrip("\r\n").split(",")
    try:
        timestamp = int(parts[0])
    except ValueError:
        return OtherEvent(0, "", "text", (line.rstrip("\r\n"),))
    if len(parts) < 3:
        return OtherEvent(timestamp, "", "text", (line.rstrip("\r\n"),))
    target, kind = parts[1], parts[2]
    data = tuple(unescape(part) for part in parts[3:])
    level = _UI_LEVELS.get(data[0]) if kind == "ui" and len(data) >= 2 else None
    if level is not None:
        return UiEvent(timestamp, level, ",".join(data[1:]))
    if kind == "artifact" and len(data) >= 2 and data[0].isdigit():
        return ArtifactEvent(timestamp, target, int(data[0]), data[1], data[2:])
    if kind == "error" and data:
        return ErrorEvent(timestamp, target, ",".join(data))
    return OtherEvent(timestamp, target, kind, data)


def find_packer() -> str:
    """The path of the installed packer, or a PackerMissingError saying how to install it."""
    binary = shutil.which("packer")
    if binary is None:
        raise PackerMissingError(
            "packer not found on PATH: install the Debian package `packer` "
            "(`sudo apt-get install packer`, or re-run scripts/bootstrap)."
        )
    return binary


def packer_version(binary: str) -> str | None:
    """The version of the packer at binary, or None if it does not say."""
    try:
        completed = subprocess.run(
            [binary, "version", "-machine-readable"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "CHECKPOINT_DISABLE": "1"},
            timeout=60,
        )
    except (FileNotFoundError, PermissionError, subprocess.TimeoutExpired):
        return None
    for line in completed.stdout.splitlines():
        event = parse_line(line)
        if isinstance(event, OtherEvent) and event.kind == "version" and event.data:
            return event.data[0]
    return None


def check_packer() -> str:
    """Raise unless a Packer new enough for webfleet's template is on PATH; return its path."""
    binary = find_packer()
    wanted = ".".join(map(str, MINIMUM_PACKER))
    version = packer_version(binary)
    if version is None:
        raise PackerMissingError(
            f"{binary} does not report a version: install the Debian package `packer` "
            f"(>= {wanted})."
        )
    if _version_tuple(version) < MINIMUM_PACKER:
        raise PackerMissingError(
            f"packer {version} is too old: webfleet needs >= {wanted} (Debian package `packer`)."
        )
    return binary


def _version_tuple(version: str) -> tuple[int, ...]:
    numbers = []
    for part in version.lstrip("v").split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def build(
    template: Path,
    var_file: Path,
    env: Mapping[str, str],
    on_event: EventHandler,
    *,
    log_dir: Path,
    binary: str = "packer",
) -> BuildResult:
    """Run `packer build` of template with var_file; raise PackerError if it fails.

    env is Packer's whole process environment (e.g. CloudTarget.tool_environment()). Packer runs
    in var_file's directory, so anything it writes relative to its working directory stays there.
    The raw stream is kept in log_dir/packer-<timestamp>.log.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    log_path = log_dir / f"packer-{stamp}.log"
    stderr_path = log_dir / f"packer-{stamp}.stderr"
    result = BuildResult(exit_code=-1, log_path=log_path)
    command = [
        binary,
        "build",
        "-machine-readable",
        "-color=false",
        f"-var-file={var_file}",
        str(template),
    ]
    environment = {**env, "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1"}
    with (
        log_path.open("w") as log,
        stderr_path.open("w") as stderr,
        log_path.open("r", errors="replace") as stream,
        _sigterm_as_interrupt(),
    ):
        process = subprocess.Popen(
            command,
            cwd=var_file.parent,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=stderr,
            start_new_session=True,
        )

        def handle(event: PackerEvent) -> None:
            _record(event, result)
            on_event(event)

        follower = _Follower(stream, process)
        try:
            for event in follower.events():
                handle(event)
        except KeyboardInterrupt:
            _interrupt(process)
            # Packer cancels the build and deletes the builder, key pair and security group;
            # show that as it happens. A second Ctrl-C stops waiting, not Packer's cleanup.
            try:
                for event in follower.events():
                    handle(event)
            except KeyboardInterrupt:
                raise PackerError(
                    f"stopped waiting for Packer (pid {process.pid}): it goes on deleting the "
                    f"builder instance, key pair and security group on its own; log: {log_path}"
                ) from None
            raise
    result.exit_code = process.returncode
    if result.exit_code != 0:
        raise PackerError(_failure_message(result, stderr_path))
    return result


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    """One SIGINT to Packer's process group, as a terminal's Ctrl-C would send it."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While Packer runs, a SIGTERM of webfleet (a cancelled CI job) interrupts it like Ctrl-C."""
    # Signal handlers can only be set from the main thread.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _record(event: PackerEvent, result: BuildResult) -> None:
    if isinstance(event, UiEvent) and event.level == "error":
        text = event.text.strip()
        if text:
            result.ui_errors.append(text)
    elif isinstance(event, ErrorEvent):
        result.build_errors.append(f"{event.target}: {event.message}")
    elif isinstance(event, ArtifactEvent):
        fields = result.artifacts.setdefault(event.target, {}).setdefault(event.index, {})
        fields[event.key] = ",".join(event.values)


def _failure_message(result: BuildResult, stderr_path: Path) -> str:
    return (
        f"packer build failed (exit {result.exit_code}):\n"
        f"{_failure_detail(result, stderr_path) or '(no error reported)'}\n"
        f"full log: {result.log_path}"
    )


def _failure_detail(result: BuildResult, stderr_path: Path) -> str:
    """What went wrong, once: Packer repeats each build's error in its UI and in its summary."""
    if not result.build_errors:
        # Nothing was built (template or variable errors): the UI errors are the whole story.
        if result.ui_errors:
            return "\n".join(_last_unique(result.ui_errors, ERROR_LINES))
        try:
            return stderr_path.read_text(errors="replace").strip()
        except OSError:
            return ""
    causes = [error.partition(": ")[2].splitlines()[0] for error in result.build_errors]
    # UI errors that add to the builds' errors, such as a failing script's stderr.
    context = [
        line
        for line in result.ui_errors
        if not line.startswith(_SUMMARY_PREFIXES) and not any(c and c in line for c in causes)
    ]
    return "\n".join([*_last_unique(context, ERROR_LINES), *result.build_errors])


# Packer's closing summary of failed builds: it repeats what the builds' errors say.
_SUMMARY_PREFIXES = ("==> Some builds didn't complete", "--> ", "Build '")


def _last_unique(lines: list[str], count: int) -> list[str]:
    unique: list[str] = []
    for line in lines:
        if line not in unique:
            unique.append(line)
    return unique[-count:]


class _Follower:
    """Reads the events Packer appends to its log, from where the last read stopped.

    Its position survives a KeyboardInterrupt, so after forwarding Ctrl-C the driver goes on
    with the next line instead of showing the stream again from its start.
    """

    def __init__(self, stream: TextIO, process: subprocess.Popen[bytes]) -> None:
        self.stream = stream
        self.process = process
        self.pending = ""

    def events(self) -> Iterator[PackerEvent]:
        """Each new event until the process exits."""
        while True:
            chunk = self.stream.readline()
            if chunk:
                self.pending += chunk
                if self.pending.endswith("\n"):
                    line, self.pending = self.pending.rstrip("\r\n"), ""
                    if line:
                        yield parse_line(line)
                continue
            if self.process.poll() is not None:
                rest, self.pending = self.pending + self.stream.read(), ""
                for line in rest.splitlines():
                    if line.strip():
                        yield parse_line(line)
                return
            time.sleep(0.05)


# --- the manifest post-processor's file --------------------------------------------------------

# Where webfleet has Packer's manifest post-processor write, in the environment's build directory.
MANIFEST_FILE = "packer-manifest.json"


@dataclass(frozen=True)
class ManifestBuild:
    """One build recorded by the manifest post-processor."""

    name: str
    builder_type: str
    artifact_id: (
        str  # amazon-ebs: "us-east-1:ami-0123…" (one "region:ami" per region, comma-joined)
    )
    run_uuid: str
    build_time: int
    custom_data: dict[str, str]

    def amis(self) -> dict[str, str]:
        """region -> AMI id, from artifact_id."""
        amis = {}
        for pair in self.artifact_id.split(","):
            region, _, ami = pair.strip().partition(":")
            if not ami.startswith("ami-") or not region:
                raise PackerError(
                    f"the manifest's artifact_id {self.artifact_id!r} is not 'region:ami-…' "
                    f"(build {self.name}, builder {self.builder_type})"
                )
            amis[region] = ami
        return amis


def read_manifest(path: Path) -> ManifestBuild | None:
    """The last build of the last run in a Packer manifest; None if there is none (yet).

    The post-processor appends every run's builds to the file and sets last_run_uuid, and writes
    only after a successful build: a failed run leaves the previous run as the last one.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PackerError(
            f"{path}: not a Packer manifest ({error}); delete it and bake again"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("builds", []), list):
        raise PackerError(
            f"{path}: not a Packer manifest (no builds list); delete it and bake again"
        )
    last_run = document.get("last_run_uuid")
    runs = [
        build
        for build in document.get("builds", [])
        if isinstance(build, dict) and build.get("packer_run_uuid") == last_run
    ]
    if not last_run or not runs:
        return None
    build = runs[-1]
    custom = build.get("custom_data") or {}
    return ManifestBuild(
        name=str(build.get("name", "")),
        builder_type=str(build.get("builder_type", "")),
        artifact_id=str(build.get("artifact_id", "")),
        run_uuid=str(last_run),
        build_time=int(build.get("build_time", 0)),
        custom_data={str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {},
    )
