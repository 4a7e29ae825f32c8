"""The /proc scanner: finding processes by what they run and where, read lazily, tolerant of
processes that exit meanwhile."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from webfleet.localregion.host.procfs import (
    Process,
    children,
    is_alive,
    kill_processes_using,
    listening_ipv4_addresses,
    processes,
    processes_using,
)

_PR_SET_NAME, _PR_GET_NAME = 15, 16


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child of this test, in tmp_path, whose command line names tmp_path."""
    marker = tmp_path / "marker"
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(marker)], cwd=tmp_path
    )
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def renamed() -> Iterator[str]:
    """This process under a command name of its own (PR_SET_NAME), restored after."""
    libc = ctypes.CDLL(None, use_errno=True)
    before = ctypes.create_string_buffer(16)
    libc.prctl(_PR_GET_NAME, before)
    name = f"wf-{os.getpid() % 10**8}"
    assert libc.prctl(_PR_SET_NAME, name.encode()) == 0
    yield name
    libc.prctl(_PR_SET_NAME, before.value)


def test_the_scanner_finds_this_process_by_comm_and_cmdline_only_when_asked(renamed: str) -> None:
    me = os.getpid()
    assert me not in [process.pid for process in processes()]
    named = [process.pid for process in processes(include_self=True) if process.comm == renamed]
    assert named == [me]
    argv = tuple(os.fsencode(arg) for arg in sys.orig_argv)
    assert me in [
        process.pid for process in processes(include_self=True) if process.cmdline == argv
    ]
    mine = Process(me)
    assert mine.ppid == os.getppid()
    assert mine.cwd == str(Path.cwd().resolve())
    assert mine.root == "/"
    assert mine.net_namespace == Process(os.getppid()).net_namespace


def test_a_child_is_found_by_parent_cwd_and_command_line(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    assert sleeper.pid in children(os.getpid())
    child = Process(sleeper.pid)
    assert child.cmdline[-1] == os.fsencode(tmp_path / "marker")
    assert sleeper.pid in processes_using(tmp_path)
    assert processes_using(tmp_path / "elsewhere") == []


def test_kill_processes_using_leaves_none(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    kill_processes_using(tmp_path)
    assert sleeper.wait(timeout=10) < 0
    assert processes_using(tmp_path) == []


def test_a_process_gone_between_listing_and_reading_reads_empty() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    listed = [process for process in processes() if process.pid == child.pid]
    child.wait()  # reaped: its /proc entry is gone before anything of it was read
    assert [process.pid for process in listed] == [child.pid]
    gone = listed[0]
    assert (gone.comm, gone.cmdline, gone.ppid) == ("", (), None)
    assert (gone.root, gone.cwd, gone.net_namespace) == (None, None, None)
    assert not is_alive(child.pid)
    # Every other process read meanwhile: none of them may raise, however many exit.
    for process in processes():
        _ = (process.comm, process.cmdline, process.ppid, process.root, process.net_namespace)


def test_an_exited_child_not_yet_waited_for_is_not_alive() -> None:
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], os.environ)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, still our zombie
    assert Process(pid).path.exists()
    assert not is_alive(pid)  # and reaped by it
    assert not Process(pid).path.exists()


def test_listening_addresses_come_from_the_tcp_table(tmp_path: Path) -> None:
    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue\n"
        # 127.77.3.2:80 listening, 127.0.0.1:4599 listening, an established one (01)
        "   0: 02034D7F:0050 00000000:0000 0A 00000000:00000000\n"
        "   1: 0100007F:11F7 00000000:0000 0A 00000000:00000000\n"
        "   2: 0100007F:9C40 0100007F:11F7 01 00000000:00000000\n"
    )
    assert listening_ipv4_addresses(table) == {"127.77.3.2", "127.0.0.1"}


def test_this_hosts_listening_addresses_include_a_socket_we_open() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.9", 0))
        server.listen()
        assert "127.0.0.9" in listening_ipv4_addresses()
