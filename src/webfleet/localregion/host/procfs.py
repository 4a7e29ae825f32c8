"""The host's processes as /proc shows them: the one place that reads /proc/<pid>.

A process can exit between being listed and being read (its entries then fail to read), and
another may get its pid later: a `Process` reads each entry only when asked, once, and answers
what a vanished process would (empty, None) instead of raising. On top of that: whether a pid
still runs, the children, namesakes and network namespace members the machines need, and
finding and killing whatever uses a directory before it is unmounted and deleted.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError

PROC = Path("/proc")


class Process:
    """One /proc/<pid>: each entry read on first use and kept (a snapshot, not a live view)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.path = PROC / str(pid)

    def __repr__(self) -> str:
        return f"Process({self.pid})"

    @functools.cached_property
    def comm(self) -> str:
        """The command name (at most 15 characters); "" once gone."""
        try:
            return (self.path / "comm").read_text(errors="replace").strip()
        except OSError:
            return ""

    @functools.cached_property
    def cmdline(self) -> tuple[bytes, ...]:
        """The arguments, program first; () once gone, for kernel threads and zombies."""
        try:
            raw = (self.path / "cmdline").read_bytes()
        except OSError:
            return ()
        return tuple(raw.removesuffix(b"\0").split(b"\0")) if raw else ()

    @functools.cached_property
    def ppid(self) -> int | None:
        try:
            stat = (self.path / "stat").read_text(encoding="ascii", errors="replace")
            # The fields after the parenthesised command name, which may itself hold spaces.
            return int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None

    @functools.cached_property
    def root(self) -> str | None:
        """Its root directory, resolved (as readlink gives it); None once gone."""
        return self._link("root")

    @functools.cached_property
    def cwd(self) -> str | None:
        return self._link("cwd")

    @functools.cached_property
    def net_namespace(self) -> tuple[int, int] | None:
        """(st_dev, st_ino) of its network namespace, as os.stat gives them for a netns file."""
        try:
            ns = os.stat(self.path / "ns" / "net")
        except OSError:
            return None
        return ns.st_dev, ns.st_ino

    def _link(self, name: str) -> str | None:
        try:
            return os.readlink(self.path / name)
        except OSError:
            return None


def processes(*, include_self: bool = False) -> Iterator[Process]:
    """Every process on the host (not this one, unless asked: never one to signal), unread."""
    for entry in os.listdir(PROC):
        if entry.isdigit() and (include_self or int(entry) != os.getpid()):
            yield Process(int(entry))


def is_alive(pid: int) -> bool:
    """True until every thread of the process has exited (zombies count as exited)."""
    _reap_if_our_child(pid)
    try:
        threads = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return False
    # Not just the leader: a killed multi-threaded process shows its leader as a zombie while
    # other threads still exit and hold its sockets, so the API port is not free yet.
    return any(_thread_running(thread / "stat") for thread in threads)


def _thread_running(stat_file: Path) -> bool:
    try:
        stat = stat_file.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _reap_if_our_child(pid: int) -> None:
    # A process started by this very process lingers as our zombie until waited for.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def children(pid: int) -> list[int]:
    """The processes whose parent is pid."""
    # No /proc/<pid>/task/<pid>/children on this kernel: scan parent pids.
    return [process.pid for process in processes() if process.ppid == pid]


def any_process_named(name: str) -> bool:
    """Whether a live process (of any region, or none) has the command name name."""
    return any(process.comm == name and is_alive(process.pid) for process in processes())


def processes_in_netns(netns: Path) -> list[int]:
    """Processes in the named network namespace (what `ip netns pids` reports)."""
    try:
        wanted = os.stat(netns)
    except OSError:
        return []
    return [
        process.pid
        for process in processes()
        if process.net_namespace == (wanted.st_dev, wanted.st_ino)
    ]


_TCP_LISTEN = "0A"


def listening_ipv4_addresses(tcp_table: Path = Path("/proc/net/tcp")) -> set[str]:
    """The IPv4 addresses some socket of this network namespace listens on (TCP LISTEN)."""
    found: set[str] = set()
    with contextlib.suppress(OSError):
        for line in tcp_table.read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _TCP_LISTEN:
                # The kernel prints the address as hex of its bytes in host (little-endian) order.
                packed = bytes.fromhex(fields[1].split(":")[0])
                found.add(".".join(str(b) for b in reversed(packed)))
    return found


def signal_quietly(pid: int, signum: signal.Signals) -> None:
    """Send a signal; a process already gone is what every signal we send aims for."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def processes_using(directory: Path) -> list[int]:
    """Processes (never this one) whose root or cwd is at or under directory, or whose command
    line names it."""
    # readlink of /proc/<pid>/{root,cwd} gives resolved paths; a command line names it as given.
    roots = tuple({str(directory.resolve()), str(directory.absolute())})
    named = tuple(os.fsencode(root) for root in roots)
    return [
        process.pid
        for process in processes()
        if any(link is not None and _within(link, roots) for link in (process.root, process.cwd))
        or any(root in arg for arg in process.cmdline for root in named)
    ]


def kill_processes_using(directory: Path) -> None:
    """SIGKILL every process using directory, again until none is left (bounded)."""
    for _ in range(50):
        pids = processes_using(directory)
        if not pids:
            return
        for pid in pids:
            signal_quietly(pid, signal.SIGKILL)
        time.sleep(0.1)
    raise LocalRegionError(f"processes using {directory} do not stop")


_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


def spawn_detached(command: Sequence[str], log_file: Path) -> int:
    """Start command (found on PATH) in a session of its own: stdin from /dev/null, stdout and
    stderr appended to log_file; its pid. posix_spawn, not Popen: the process outlives the
    caller's interest in it, and a dropped Popen warns while its child runs (is_alive() reaps
    it)."""
    return os.posix_spawnp(
        command[0],
        list(command),
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_file), _APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
