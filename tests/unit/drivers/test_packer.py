"""webfleet/packer.py: Packer's machine-readable stream, a real build, its failure and interrupt.

The sample lines are what the installed Packer 1.6.6 printed for `packer build -machine-readable`
of small templates (the built-in `file` builder and `shell-local` provisioner: no cloud). The
build tests run that same Packer the same way.
"""

from __future__ import annotations

import json
import shutil
import signal
import textwrap
from pathlib import Path

import pytest

from webfleet.drivers import packer
from webfleet.drivers.packer import (
    ArtifactEvent,
    ErrorEvent,
    OtherEvent,
    PackerError,
    PackerEvent,
    PackerMissingError,
    UiEvent,
    parse_line,
    read_manifest,
)

# Captured from Packer 1.6.6: a successful build with a provisioner printing "hello, world".
SUCCESS = r"""
1795387174,,ui,say,==> file.f: Running local shell script: /tmp/packer-shell1735535969
1795387174,,ui,message,    file.f: hello%!(PACKER_COMMA) world
1795387174,,ui,say,Build 'file.f' finished after 18 milliseconds 33 microseconds.
1795387174,,ui,say,\n==> Builds finished. The artifacts of successful builds are:
1795387174,file.f,artifact-count,1
1795387174,file.f,artifact,0,builder-id,packer.file
1795387174,file.f,artifact,0,id,File
1795387174,file.f,artifact,0,string,Stored file: out.txt
1795387174,file.f,artifact,0,files-count,1
1795387174,file.f,artifact,0,file,0,out.txt
1795387174,file.f,artifact,0,end
""".strip().splitlines()

# Captured from Packer 1.6.6: a provisioner that failed with exit status 3.
FAILURE = r"""
1795387177,,ui,say,==> file.f: Running local shell script: /tmp/packer-shell607411909
1795387177,,ui,error,==> file.f: about to fail
1795387177,,ui,error,Build 'file.f' errored after 12 milliseconds 706 microseconds: Script exited with non-zero exit status: 3.Allowed exit codes are: [0]
1795387177,,error-count,1
1795387177,file.f,error,Script exited with non-zero exit status: 3.Allowed exit codes are: [0]
""".strip().splitlines()  # noqa: E501

# Captured from Packer 1.6.6: a template with an unset variable.
UNSET_VARIABLE = (
    r'1795387177,,ui,error,Error: Unset variable "x"\n\nA used variable must be set or have a '
    r"default value; see\nhttps://packer.io/docs/configuration/from-1.5/syntax for details.\n\n"
)


def test_ui_lines_are_typed_and_unescaped() -> None:
    say = parse_line(SUCCESS[0])
    assert say == UiEvent(
        1795387174, "say", "==> file.f: Running local shell script: /tmp/packer-shell1735535969"
    )
    message = parse_line(SUCCESS[1])
    assert message == UiEvent(1795387174, "message", "    file.f: hello, world")
    finished = parse_line(SUCCESS[3])
    assert isinstance(finished, UiEvent)
    assert finished.text == "\n==> Builds finished. The artifacts of successful builds are:"


def test_multi_line_error_keeps_its_lines() -> None:
    event = parse_line(UNSET_VARIABLE)
    assert isinstance(event, UiEvent)
    assert event.level == "error"
    assert event.text.splitlines()[0] == 'Error: Unset variable "x"'
    assert "https://packer.io/docs/configuration/from-1.5/syntax" in event.text


def test_artifact_lines_carry_target_index_key_and_values() -> None:
    assert parse_line(SUCCESS[6]) == ArtifactEvent(1795387174, "file.f", 0, "id", ("File",))
    assert parse_line(SUCCESS[9]) == ArtifactEvent(
        1795387174, "file.f", 0, "file", ("0", "out.txt")
    )
    assert parse_line(SUCCESS[4]) == OtherEvent(1795387174, "file.f", "artifact-count", ("1",))
    # What the amazon-ebs builder reports as its artifact's id.
    assert parse_line(
        "1795387174,amazon-ebs.app,artifact,0,id,us-east-1:ami-0123456789abcdef0"
    ) == ArtifactEvent(1795387174, "amazon-ebs.app", 0, "id", ("us-east-1:ami-0123456789abcdef0",))


def test_error_lines_name_their_build() -> None:
    assert parse_line(FAILURE[4]) == ErrorEvent(
        1795387177,
        "file.f",
        "Script exited with non-zero exit status: 3.Allowed exit codes are: [0]",
    )


def test_unparseable_lines_become_text() -> None:
    assert parse_line("panic: something") == OtherEvent(0, "", "text", ("panic: something",))


def test_version_tuple_orders_versions() -> None:
    assert packer._version_tuple("1.6.6") == (1, 6, 6)
    assert packer._version_tuple("v1.10.0-dev") == (1, 10, 0)
    assert packer._version_tuple("1.6.5") < packer.MINIMUM_PACKER


def test_missing_packer_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PackerMissingError, match="Debian package `packer`"):
        packer.check_packer()


# --- the installed Packer ------------------------------------------------------------------------

needs_packer = pytest.mark.skipif(shutil.which("packer") is None, reason="packer not installed")


def _template(directory: Path, inline: list[str]) -> Path:
    """A template of the built-in file builder with one shell-local provisioner and a manifest."""
    commands = ", ".join(json.dumps(command) for command in inline)
    template = directory / "test.pkr.hcl"
    template.write_text(
        textwrap.dedent(
            f"""\
            variable "greeting" {{
              type = string
            }}
            variable "manifest_path" {{
              type = string
            }}
            source "file" "f" {{
              content = var.greeting
              target  = "out.txt"
            }}
            build {{
              sources = ["source.file.f"]
              provisioner "shell-local" {{
                inline = [{commands}]
              }}
              post-processor "manifest" {{
                output     = var.manifest_path
                strip_path = true
              }}
            }}
            """
        )
    )
    return template


def _var_file(directory: Path) -> Path:
    var_file = directory / "work" / "variables.pkrvars.json"
    var_file.parent.mkdir()
    manifest = str(directory / "packer-manifest.json")
    var_file.write_text(json.dumps({"greeting": "hello, world", "manifest_path": manifest}))
    return var_file


def _build(tmp_path: Path, inline: list[str], events: list[PackerEvent]) -> packer.BuildResult:
    return packer.build(
        _template(tmp_path, inline),
        _var_file(tmp_path),
        {"PATH": "/usr/bin:/bin"},
        events.append,
        log_dir=tmp_path / "logs",
        binary=packer.check_packer(),
    )


@needs_packer
def test_build_streams_events_and_keeps_the_raw_log(tmp_path: Path) -> None:
    events: list[PackerEvent] = []
    result = _build(tmp_path, ["echo ${var.greeting}"], events)
    assert result.exit_code == 0
    ui = [event.text for event in events if isinstance(event, UiEvent)]
    assert "    file.f: hello, world" in ui
    assert result.artifact_ids() == ["File"]
    assert result.artifacts["file.f"][0]["builder-id"] == "packer.file"
    # The raw stream, escapes and all; the file builder ran in the var file's directory.
    assert result.log_path.parent == tmp_path / "logs"
    assert result.log_path.name.startswith("packer-")
    assert ",ui,message,    file.f: hello%!(PACKER_COMMA) world" in result.log_path.read_text()
    assert (tmp_path / "work" / "out.txt").read_text() == "hello, world"
    built = read_manifest(tmp_path / "packer-manifest.json")
    assert built is not None
    assert (built.name, built.builder_type, built.artifact_id) == ("f", "file", "File")


@needs_packer
def test_manifest_of_several_runs_gives_the_last_run(tmp_path: Path) -> None:
    manifest = tmp_path / "packer-manifest.json"
    _build(tmp_path, ["true"], [])
    first = read_manifest(manifest)
    shutil.rmtree(tmp_path / "work")
    _build(tmp_path, ["true"], [])
    second = read_manifest(manifest)
    assert first is not None and second is not None
    assert len(json.loads(manifest.read_text())["builds"]) == 2
    assert second.run_uuid != first.run_uuid
    assert second.run_uuid == json.loads(manifest.read_text())["last_run_uuid"]


@needs_packer
def test_failed_build_raises_with_packers_last_errors(tmp_path: Path) -> None:
    with pytest.raises(PackerError) as raised:
        _build(tmp_path, ["echo 'about to fail' >&2", "exit 3"], [])
    message = str(raised.value)
    assert message.startswith("packer build failed (exit 1):")
    assert "about to fail" in message
    assert "Script exited with non-zero exit status: 3" in message
    assert "full log: " + str(tmp_path / "logs") in message
    # A failed run writes no manifest.
    assert read_manifest(tmp_path / "packer-manifest.json") is None


@needs_packer
def test_template_errors_are_reported(tmp_path: Path) -> None:
    template = _template(tmp_path, ["true"])
    var_file = tmp_path / "empty.pkrvars.json"
    var_file.write_text("{}")
    with pytest.raises(PackerError, match='Unset variable "greeting"'):
        packer.build(template, var_file, {"PATH": "/usr/bin:/bin"}, print, log_dir=tmp_path)


@needs_packer
def test_interrupt_is_forwarded_and_packer_cancels_cleanly(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    events: list[PackerEvent] = []

    def on_event(event: PackerEvent) -> None:
        events.append(event)
        if isinstance(event, UiEvent) and event.text.endswith("file.f: started"):
            raise KeyboardInterrupt  # as Ctrl-C would, while webfleet follows the stream

    with pytest.raises(KeyboardInterrupt):
        packer.build(
            _template(tmp_path, ["echo started", "sleep 30", f"touch {marker}"]),
            _var_file(tmp_path),
            {"PATH": "/usr/bin:/bin"},
            on_event,
            log_dir=tmp_path / "logs",
        )
    texts = [event.text for event in events if isinstance(event, UiEvent)]
    assert "Cancelling build after receiving interrupt" in texts
    assert "Cleanly cancelled builds after being interrupted." in texts
    assert not marker.exists()
    assert read_manifest(tmp_path / "packer-manifest.json") is None


def test_sigterm_handler_is_restored(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with packer._sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) is packer._raise_interrupt
    assert signal.getsignal(signal.SIGTERM) == before


# --- the manifest ---------------------------------------------------------------------------------


def _ebs_build(run: str, ami: str, when: int) -> dict[str, object]:
    """A build record as the manifest post-processor writes it for amazon-ebs."""
    return {
        "name": "app",
        "builder_type": "amazon-ebs",
        "build_time": when,
        "files": None,
        "artifact_id": f"us-east-1:{ami}",
        "packer_run_uuid": run,
        "custom_data": {"app_name": "webfleet-demo", "app_version": "1.0.0", "git_commit": "abc"},
    }


def test_manifest_gives_the_last_build_of_the_last_run(tmp_path: Path) -> None:
    manifest = tmp_path / "packer-manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "builds": [
                    _ebs_build("run-1", "ami-0000000000000001", 1),
                    _ebs_build("run-2", "ami-0000000000000002", 2),
                    _ebs_build("run-3", "ami-0000000000000003", 3),
                ],
                # A newer build of another run listed earlier does not matter: the last run does.
                "last_run_uuid": "run-2",
            }
        )
    )
    build = read_manifest(manifest)
    assert build is not None
    assert build.run_uuid == "run-2"
    assert build.amis() == {"us-east-1": "ami-0000000000000002"}
    assert build.custom_data["app_version"] == "1.0.0"


def test_manifest_with_several_regions(tmp_path: Path) -> None:
    record = _ebs_build("run-1", "ami-0000000000000001", 1)
    record["artifact_id"] = "us-east-1:ami-0000000000000001,eu-west-1:ami-0000000000000002"
    manifest = tmp_path / "packer-manifest.json"
    manifest.write_text(json.dumps({"builds": [record], "last_run_uuid": "run-1"}))
    build = read_manifest(manifest)
    assert build is not None
    assert build.amis() == {
        "us-east-1": "ami-0000000000000001",
        "eu-west-1": "ami-0000000000000002",
    }


def test_missing_or_empty_manifest_has_no_build(tmp_path: Path) -> None:
    assert read_manifest(tmp_path / "none.json") is None
    manifest = tmp_path / "packer-manifest.json"
    manifest.write_text(json.dumps({"builds": [], "last_run_uuid": ""}))
    assert read_manifest(manifest) is None


def test_broken_manifest_is_an_error_naming_the_file(tmp_path: Path) -> None:
    manifest = tmp_path / "packer-manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(PackerError, match=str(manifest)):
        read_manifest(manifest)


def test_artifact_that_is_not_an_ami_is_an_error(tmp_path: Path) -> None:
    record = _ebs_build("run-1", "ami-0000000000000001", 1)
    record["artifact_id"] = "File"
    manifest = tmp_path / "packer-manifest.json"
    manifest.write_text(json.dumps({"builds": [record], "last_run_uuid": "run-1"}))
    build = read_manifest(manifest)
    assert build is not None
    with pytest.raises(PackerError, match="not 'region:ami-…'"):
        build.amis()


def test_failure_message_says_each_error_once(tmp_path: Path) -> None:
    result = packer.BuildResult(exit_code=1, log_path=tmp_path / "packer.log")
    summary = [
        r"1795387177,,ui,error,\n==> Some builds didn't complete successfully and had errors:",
        r"1795387177,,ui,error,--> file.f: Script exited with non-zero exit status: 3.Allowed "
        r"exit codes are: [0]",
    ]
    for line in [*FAILURE, *summary]:
        packer._record(parse_line(line), result)
    message = packer._failure_message(result, tmp_path / "packer.stderr")
    assert message.splitlines() == [
        "packer build failed (exit 1):",
        "==> file.f: about to fail",
        "file.f: Script exited with non-zero exit status: 3.Allowed exit codes are: [0]",
        f"full log: {tmp_path / 'packer.log'}",
    ]
