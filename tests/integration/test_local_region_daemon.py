"""The local region daemon for real: up, status, crash recovery and down on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.procfs import is_alive, processes
from webfleet.localregion.images.baseimage import ensure_base_image
from webfleet.localregion.images.catalogue import debian_image
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.daemon import RegionState
from webfleet.localregion.runtime.pidfile import PidRecord, write_pid_record
from webfleet.localregion.runtime.ports import free_port
from webfleet.localregion.runtime.probe import api_answers, sts_client
from webfleet.localregion.runtime.processes import serve_command, wait_until
from webfleet.localregion.runtime.settings import RegionSettings


def region_pids(state_dir: Path) -> list[int]:
    """Every live process whose command line names this state dir (daemon or not)."""
    named = os.fsencode(state_dir)
    return [
        process.pid
        for process in processes()
        if any(named in arg for arg in process.cmdline) and is_alive(process.pid)
    ]


@pytest.fixture
def region(tmp_path: Path) -> Iterator[RegionSettings]:
    settings = RegionSettings(state_dir=tmp_path / "region", port=free_port())
    try:
        yield settings
    finally:
        daemon.down(settings)
        assert region_pids(settings.state_dir) == []


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not the region, so must never be signalled."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def base_ami_id(settings: RegionSettings) -> str:
    """The id the region registers its cached Debian base image under."""
    return debian_image(ensure_base_image(settings.image_cache, print)).ami_id


def debian_images(settings: RegionSettings) -> list[str]:
    ec2 = boto3.client(
        "ec2",
        endpoint_url=settings.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    images = ec2.describe_images(
        Owners=["136693071363"],
        Filters=[
            {"Name": "name", "Values": ["debian-12-amd64-*"]},
            {"Name": "architecture", "Values": ["x86_64"]},
        ],
    )["Images"]
    return [image["ImageId"] for image in images]


def caller_account(settings: RegionSettings) -> str:
    return sts_client(settings.endpoint_url, 5.0).get_caller_identity()["Account"]


def test_lifecycle_up_status_crash_recovery_down(region: RegionSettings) -> None:
    started = daemon.up(region)
    assert started.state is RegionState.RUNNING
    assert started.endpoint_url == region.endpoint_url
    assert started.pid is not None and region_pids(region.state_dir) == [started.pid]
    assert debian_images(region) == [base_ami_id(region)]
    assert caller_account(region).isdigit()

    current = daemon.status(region)
    assert current.running and current.pid == started.pid
    assert current.uptime_seconds is not None and current.uptime_seconds >= 0
    assert current.log_file == region.log_file and region.log_file.is_file()

    assert daemon.up(region).pid == started.pid
    assert region_pids(region.state_dir) == [started.pid]

    crashed_pid = started.pid
    os.kill(crashed_pid, signal.SIGKILL)
    assert wait_until(lambda: not is_alive(crashed_pid), 10)
    crashed = daemon.status(region)
    assert crashed.state is RegionState.STALE and not crashed.running
    assert crashed.pid == started.pid

    recovered = daemon.up(region)
    assert recovered.running and recovered.pid not in (None, started.pid)
    assert debian_images(region) == [base_ami_id(region)]

    report = daemon.down(region)
    assert report.stopped_pid == recovered.pid
    assert not report.forced  # it stopped on SIGTERM, cleanly
    assert recovered.pid is not None and not is_alive(recovered.pid)
    assert region.pid_file in report.removed and region.state_dir in report.removed
    assert not region.state_dir.exists()
    assert daemon.status(region).state is RegionState.STOPPED

    again = daemon.down(region)
    assert (again.stopped_pid, again.stale_pid, again.removed) == (None, None, ())


def test_concurrent_ups_start_one_daemon(region: RegionSettings) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        statuses = list(pool.map(lambda _: daemon.up(region), range(3)))
    pids = {started.pid for started in statuses}
    assert len(pids) == 1 and region_pids(region.state_dir) == list(pids)


def test_up_on_another_address_while_running_says_so(region: RegionSettings) -> None:
    daemon.up(region)
    elsewhere = RegionSettings(state_dir=region.state_dir, port=free_port())
    with pytest.raises(LocalRegionError, match=region.endpoint_url):
        daemon.up(elsewhere)


@pytest.mark.parametrize(
    "extra_args",
    [[], ["webfleet.localregion", "serve", "--state-dir", "/another/region"]],
    ids=["unrelated", "other-region"],
)
def test_pid_file_naming_a_process_not_ours_is_stale_and_never_signalled(
    region: RegionSettings, extra_args: list[str]
) -> None:
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", *extra_args]
    )
    try:
        region.state_dir.mkdir(parents=True)
        write_pid_record(
            region.pid_file, PidRecord(bystander.pid, region.host, region.port, time.time())
        )
        stale = daemon.status(region)
        assert stale.state is RegionState.STALE and stale.pid == bystander.pid

        report = daemon.down(region)
        assert report.stale_pid == bystander.pid and report.stopped_pid is None
        assert not region.pid_file.exists()

        region.state_dir.mkdir(parents=True, exist_ok=True)
        write_pid_record(
            region.pid_file, PidRecord(bystander.pid, region.host, region.port, time.time())
        )
        started = daemon.up(region)
        assert started.running and started.pid != bystander.pid
        assert bystander.poll() is None, "the bystander was signalled"
    finally:
        bystander.kill()
        bystander.wait(timeout=10)


def test_garbage_pid_file_is_stale_and_up_recovers(region: RegionSettings) -> None:
    region.state_dir.mkdir(parents=True)
    region.pid_file.write_text("not a pid record", encoding="utf-8")
    assert daemon.status(region).state is RegionState.STALE
    assert daemon.up(region).running


def test_port_taken_by_another_program_fails_clearly(region: RegionSettings) -> None:
    with socket.socket() as other:
        other.bind((region.host, region.port))
        other.listen()
        with pytest.raises(LocalRegionError, match=f"Port {region.port} on 127.0.0.1") as error:
            daemon.up(region)
        assert "another free port" in str(error.value)
    assert region_pids(region.state_dir) == []
    assert not region.pid_file.exists()


def test_serve_itself_reports_a_taken_port(region: RegionSettings) -> None:
    # The path `up` cannot pre-check: another program takes the port after up looked.
    with socket.socket() as other:
        other.bind((region.host, region.port))
        other.listen()
        served = subprocess.run(serve_command(region), capture_output=True, text=True, timeout=60)
    assert served.returncode == 1
    assert f"Port {region.port} on 127.0.0.1 is already taken" in served.stderr


def test_daemon_dying_at_start_is_reported_with_its_log(region: RegionSettings) -> None:
    region.ami_catalogue.mkdir(parents=True)  # the catalogue cannot be written: serve fails
    with pytest.raises(LocalRegionError, match="exited at start") as error:
        daemon.up(region)
    assert "amis.json" in str(error.value)  # the log's last lines name the cause
    assert not region.pid_file.exists()
    assert region_pids(region.state_dir) == []


def test_daemon_not_answering_in_time_is_stopped(
    region: RegionSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real daemon starts, but `up` is made deaf to it, so the wait must run out.
    monkeypatch.setattr(daemon, "api_answers", lambda _client: False)
    with pytest.raises(LocalRegionError, match="did not answer"):
        daemon.up(region, timeout_seconds=1.0)
    assert not region.pid_file.exists()
    assert region_pids(region.state_dir) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_foreground_serve_exits_cleanly_on_signal(
    region: RegionSettings, signum: signal.Signals
) -> None:
    server = subprocess.Popen(
        serve_command(region), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        client = sts_client(region.endpoint_url, 2.0)
        assert wait_until(lambda: server.poll() is not None or api_answers(client), 60)
        assert server.poll() is None, "serve exited before answering"
        server.send_signal(signum)
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    assert server.returncode == 0, stderr
    assert f"received {signum.name}" in stderr and "AWS API stopped" in stderr
