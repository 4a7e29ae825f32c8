"""Application Load Balancers as HAProxy processes.

A reconciler thread reads moto's ELBv2 records every second (alb_snapshot), renders each
balancer's HAProxy configuration (haproxy_config) and starts, reloads (seamlessly: listening
sockets handed over with -x, server states kept through a state file) or stops HAProxy to match.
Each balancer listens on a loopback address of its own on its listeners' real ports, and its DNS
name resolves there through a managed block in /etc/hosts. Target health is what HAProxy's
checks see, reported in ELB's terms (initial, healthy, unhealthy, draining).
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import logging
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from webfleet.localregion.ec2.network import region_tag
from webfleet.localregion.elb.access_logs import AccessLogDelivery, LoggedBalancer
from webfleet.localregion.elb.haproxy_config import (
    LoadBalancer,
    Target,
    TargetGroup,
    backend_name,
    render_haproxy_config,
)
from webfleet.localregion.elb.hosts_file import HostsBlock, default_hosts_file
from webfleet.localregion.elb.snapshot import BalancerRecord
from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.procfs import listening_ipv4_addresses
from webfleet.localregion.runtime.processes import (
    live_pid_from_file,
    processes_named_with_files_under,
    stop_process,
    wait_until,
)

log = logging.getLogger(__name__)

HAPROXY = "haproxy"
RECONCILE_SECONDS = 1.0
_START_SECONDS = 10.0
_STOP_SECONDS = 5.0
_SOCKET_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class TargetHealth:
    state: str  # initial | healthy | unhealthy | draining | unused
    reason: str | None = None
    description: str | None = None


@dataclass
class _Running:
    arn: str
    directory: Path
    address: str
    dns_name: str
    config: str = ""
    # (backend, server) pairs HAProxy has reported UP since they were registered
    seen_up: set[tuple[str, str]] = field(default_factory=set)
    known: set[tuple[str, str]] = field(default_factory=set)
    backends: dict[str, str] = field(default_factory=dict)  # backend name → target group ARN
    # When each (backend, server) was registered, and per backend how long a target that never
    # passed may fail its checks before it is `unhealthy` (interval x unhealthy threshold).
    registered_at: dict[tuple[str, str], float] = field(default_factory=dict)
    fail_after: dict[str, float] = field(default_factory=dict)
    # The last rows HAProxy gave: what its targets' health reads while it restarts.
    last_rows: list[dict[str, str]] = field(default_factory=list)

    @property
    def config_file(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def pid_file(self) -> Path:
        return self.directory / "haproxy.pid"

    @property
    def stats_socket(self) -> Path:
        return self.directory / "stats.sock"

    @property
    def state_file(self) -> Path:
        return self.directory / "servers.state"


class LoadBalancerRuntime:
    """The `load balancers` component of a region."""

    name = "load balancers"

    def __init__(self, state_dir: Path, hosts_file: Path | None = None) -> None:
        self.directory = _directory(state_dir)
        self.hosts = _hosts_block(state_dir, hosts_file)
        tag = region_tag(state_dir)
        # One /24 of loopback per region (two regions on a host must not share addresses).
        self._network = ipaddress.ip_network(f"127.77.{int(tag, 16) % 250 + 1}.0/24")
        self._running: dict[str, _Running] = {}
        self._previous_targets: dict[str, dict[str, Target]] = {}
        self._draining: dict[str, dict[str, tuple[Target, float]]] = {}
        self._restored: dict[str, Any] | None = None  # the previous daemon's snapshot()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.access_logs = AccessLogDelivery(f"webfleet-{tag}-access-logs", _put_log_object)

    # --- component ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._restored is None:
            _remove(self.directory, self.hosts)
        else:
            self._adopt(self._restored)
        self.directory.mkdir(parents=True, exist_ok=True)
        if shutil.which(HAPROXY) is None:
            raise LocalRegionError(
                "haproxy is missing: the local region runs every ALB as HAProxy "
                "(Debian package `haproxy`; scripts/bootstrap installs it)"
            )
        from webfleet.localregion.elb import (
            hooks as elbv2_hooks,  # imports moto: after MOTO_* settings
        )

        elbv2_hooks.install(self)
        self.access_logs.start()
        self._thread = threading.Thread(target=self._loop, name="load-balancers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        from webfleet.localregion.elb import hooks as elbv2_hooks

        elbv2_hooks.uninstall(self)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10.0)
        self.access_logs.stop()
        _remove(self.directory, self.hosts)

    # --- kept across a daemon restart (persistence/region_state.py) -----------------------------

    def snapshot(self) -> object:
        with self._lock:
            return {
                "running": dict(self._running),
                "previous_targets": dict(self._previous_targets),
                "draining": dict(self._draining),
            }

    def restore(self, state: object) -> None:
        self._restored = state if isinstance(state, dict) else None

    def _adopt(self, state: dict[str, Any]) -> None:
        """The previous daemon's balancers are this one's: their HAProxy processes keep serving
        (times are monotonic: the same clock in every process since the host booted). A dead
        one restarts at the first reconcile; one moto's saved records do not hold stops."""
        self._running = dict(state["running"])
        self._previous_targets = dict(state["previous_targets"])
        self._draining = dict(state["draining"])
        kept = {pid for r in self._running.values() for pid in haproxy_processes(r.directory)}
        for pid in set(haproxy_processes(self.directory)) - kept:
            stop_process(pid, _STOP_SECONDS, name="HAProxy")
        log.info("adopted %d load balancers of the previous daemon", len(self._running))

    def changed(self) -> None:
        """Something in ELBv2 changed: reconcile now rather than at the next tick."""
        self._wake.set()

    # --- reconciling ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(RECONCILE_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.reconcile()
            except Exception:
                # The next tick tries again; a broken balancer must not stop the others.
                log.exception("reconciling load balancers failed")

    def reconcile(self) -> None:
        from webfleet.localregion.elb import hooks as elbv2_hooks

        records = elbv2_hooks.balancer_records(
            self._address_of_target, self._certificate, self._draining_of
        )
        with self._lock:
            self._track_draining(records)
            wanted = {record.arn: record for record in records}
            for arn in list(self._running):
                if arn not in wanted:
                    self._stop_balancer(self._running.pop(arn))
            for record in records:
                try:
                    self._apply(record)
                except (OSError, LocalRegionError, subprocess.SubprocessError) as error:
                    log.error("load balancer %s: %s", record.name, error)
            self._poll_health()
            self.hosts.write({r.dns_name: r.address for r in self._running.values()})
            self.access_logs.configure(
                [
                    LoggedBalancer(
                        record.arn,
                        record.access_logs,
                        self._running[record.arn].address,
                        self._running[record.arn].backends,
                    )
                    for record in records
                    if record.access_logs is not None and record.arn in self._running
                ]
            )

    def _apply(self, record: BalancerRecord) -> None:
        running = self._running.get(record.arn)
        if running is None:
            running = _Running(
                record.arn,
                self.directory / hashlib.sha256(record.arn.encode()).hexdigest()[:12],
                self._allocate_address(record.arn),
                record.dns_name,
            )
            running.directory.mkdir(parents=True, exist_ok=True)
            self._running[record.arn] = running
        servers = {
            (backend_name(g), t.instance_id) for g in record.target_groups for t in g.targets
        }
        joining = servers - running.known
        balancer = LoadBalancer(
            arn=record.arn,
            name=record.name,
            address=running.address,
            listeners=record.listeners,
            target_groups=tuple(_mark_joining(g, joining) for g in record.target_groups),
            idle_timeout_seconds=record.idle_timeout_seconds,
            access_log_socket=(
                self.access_logs.haproxy_target if record.access_logs is not None else None
            ),
        )
        config = _with_server_state(
            render_haproxy_config(
                balancer, stats_socket=running.stats_socket, pid_file=running.pid_file
            ),
            running.state_file,
        )
        pid = _haproxy_pid(running)
        if config == running.config and pid is not None:
            return
        running.config_file.write_text(config, encoding="utf-8")
        _check_config(running.config_file)
        if pid is None:
            if not running.config:
                running.state_file.unlink(missing_ok=True)
            else:
                # Its HAProxy died: the new one starts from the servers' last polled states, as
                # an ALB node failing does not make its targets unhealthy.
                log.warning("load balancer %s: HAProxy is gone, restarting it", record.name)
            _start_haproxy(running)
            log.info("load balancer %s listening on %s", record.name, running.address)
        else:
            _save_server_state(running)
            _reload_haproxy(running, pid)
        running.config = config
        running.backends = {backend_name(g): g.arn for g in balancer.target_groups}
        running.fail_after = {
            backend_name(g): float(
                g.health_check.interval_seconds * g.health_check.unhealthy_threshold
            )
            for g in balancer.target_groups
        }
        # Joining servers came up disabled: out of maintenance and down in one CLI line, so that
        # no request reaches them before their checks pass (measured: `state ready` alone reads
        # `UP 1/2` until the first check fails, and the load test saw 503s in that window).
        now = time.monotonic()
        for backend, server in sorted(joining):
            _bring_in_down(running, backend, server)
            running.registered_at[(backend, server)] = now
        running.known = servers
        running.registered_at = {k: v for k, v in running.registered_at.items() if k in servers}
        running.seen_up &= servers

    def _poll_health(self) -> None:
        for running in self._running.values():
            for row in _server_rows(running):
                if row.get("status", "").startswith("UP"):
                    running.seen_up.add((row["pxname"], row["svname"]))
            # What a restarted HAProxy starts from if this one dies.
            _save_server_state(running)

    def _stop_balancer(self, running: _Running) -> None:
        pid = _haproxy_pid(running)
        if pid is not None:
            stop_process(pid, _STOP_SECONDS, name="HAProxy")
        shutil.rmtree(running.directory, ignore_errors=True)

    # --- addresses, certificates, draining ------------------------------------------------------

    def _allocate_address(self, arn: str) -> str:
        # Another region's /24 may be this one (the tag is a hash): skip what others listen on.
        used = {r.address for r in self._running.values()} | listening_ipv4_addresses()
        for host in list(self._network.hosts())[1:]:
            if str(host) not in used:
                return str(host)
        raise LocalRegionError(f"no loopback address left in {self._network} for {arn}")

    def _address_of_target(self, instance_id: str) -> str | None:
        from webfleet.localregion.elb import hooks as elbv2_hooks

        return elbv2_hooks.instance_address(instance_id)

    def _certificate(self, certificate_arn: str) -> str | None:
        from webfleet.localregion.elb import hooks as elbv2_hooks

        pem = elbv2_hooks.certificate_pem(certificate_arn)
        if pem is None:
            return None
        path = (
            self.directory
            / "certificates"
            / (hashlib.sha256(certificate_arn.encode()).hexdigest()[:16] + ".pem")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != pem:
            path.touch(mode=0o600)
            path.write_text(pem, encoding="utf-8")
        return str(path)

    def _draining_of(self, target_group_arn: str) -> list[Target]:
        now = time.monotonic()
        entries = self._draining.get(target_group_arn, {})
        return [target for target, until in entries.values() if until > now]

    def _track_draining(self, records: list[BalancerRecord]) -> None:
        """Targets that left a group keep their server, with no new requests, for the group's
        deregistration delay: in-flight requests finish, as on an ALB."""
        now = time.monotonic()
        forwarded: set[str] = set()
        for record in records:
            for group in record.target_groups:
                forwarded.add(group.arn)
                current = {t.instance_id: t for t in group.targets if not t.draining}
                previous = self._previous_targets.get(group.arn, {})
                draining = self._draining.setdefault(group.arn, {})
                for instance_id, target in previous.items():
                    if instance_id not in current and instance_id not in draining:
                        until = now + group.deregistration_delay_seconds
                        draining[instance_id] = (replace(target, draining=True), until)
                for instance_id in list(draining):
                    if instance_id in current:
                        del draining[instance_id]
                self._previous_targets[group.arn] = current
        # Every drain ends after its delay; one of a group no balancer forwards to any more (its
        # listener or balancer deleted) at once: no request is in flight to wait for.
        for arn, draining in list(self._draining.items()):
            for instance_id, (_target, until) in list(draining.items()):
                if until <= now or arn not in forwarded:
                    del draining[instance_id]
            if not draining:
                del self._draining[arn]
        for arn in set(self._previous_targets) - forwarded:
            del self._previous_targets[arn]

    # --- target health --------------------------------------------------------------------------

    def target_health(
        self, target_group_arn: str, instance_id: str, attached: bool = True
    ) -> TargetHealth:
        """What HAProxy sees of a registered target, in ELB's terms. attached: a load balancer
        forwards to the group (moto's records), whether or not its HAProxy runs yet."""
        with self._lock:
            if instance_id in self._draining.get(target_group_arn, {}):
                return TargetHealth(
                    "draining",
                    "Target.DeregistrationInProgress",
                    "Target deregistration is in progress",
                )
            for running in self._running.values():
                for row in _server_rows(running):
                    if row.get("svname") != instance_id:
                        continue
                    backend = row.get("pxname", "")
                    if running.backends.get(backend) != target_group_arn:
                        continue
                    key = (backend, instance_id)
                    now = time.monotonic()
                    failing_for = now - running.registered_at.get(key, now)
                    return _health_from_row(
                        row,
                        key in running.seen_up,
                        failed_long_enough=failing_for >= running.fail_after.get(backend, 0.0),
                    )
            served = any(target_group_arn in r.backends.values() for r in self._running.values())
        if not served and not attached:
            return TargetHealth(
                "unused",
                "Target.NotInUse",
                "Target group is not configured to receive traffic from the load balancer",
            )
        if self._address_of_target(instance_id) is None:
            return TargetHealth(
                "unused", "Target.InvalidState", "Target is in the stopped or terminated state"
            )
        # Registered (or attached) a moment ago: the next reconcile, within a second, adds it.
        return TargetHealth(
            "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
        )

    def requests_served(self, target_group_arn: str) -> int:
        """HTTP responses the group's servers gave, summed over the balancers forwarding to it.

        Counted since each HAProxy process started: a reload starts from zero again.
        """
        total = 0
        with self._lock:
            for running in self._running.values():
                for row in _stat_rows(running.stats_socket):
                    if running.backends.get(row.get("pxname", "")) == target_group_arn:
                        total += sum(int(row.get(key) or 0) for key in _RESPONSE_COUNTERS)
        return total

    def addresses(self) -> dict[str, str]:
        """DNS name → loopback address of every running balancer."""
        with self._lock:
            return {r.dns_name: r.address for r in self._running.values()}


_RESPONSE_COUNTERS = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


def _health_from_row(
    row: dict[str, str], was_up: bool, *, failed_long_enough: bool = False
) -> TargetHealth:
    """A server's row in ELB's terms. A target that never passed is `initial` until it has failed
    its checks for the unhealthy threshold's worth of intervals, then `unhealthy` (as on ELB)."""
    status = row.get("status", "")
    check = row.get("check_status", "")
    if status.startswith("UP"):
        return TargetHealth("healthy")
    if status.startswith("MAINT"):
        return TargetHealth("unused", "Target.NotInUse", "Target is in maintenance")
    # check_status: L4OK/L6OK/L7OK(C) passed; L4TOUT, L4CON, L7STS, SOCKERR, ... failed; a
    # leading "* " marks a check in progress.
    last = check.lstrip("* ")
    last_check_failed = last.startswith(("L4", "L6", "L7", "SOCKERR")) and "OK" not in last
    if not was_up and not (failed_long_enough and last_check_failed):
        return TargetHealth(
            "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
        )
    reasons = {
        "L7STS": ("Target.ResponseCodeMismatch", "Health checks failed with these codes: "),
        "L4TOUT": ("Target.Timeout", "Request timed out"),
        "L7TOUT": ("Target.Timeout", "Request timed out"),
    }
    reason, description = reasons.get(
        last.rstrip("0123456789 "), ("Target.FailedHealthChecks", "Health checks failed")
    )
    if reason == "Target.ResponseCodeMismatch":
        description += f"[{row.get('check_code', '')}]"
    return TargetHealth("unhealthy", reason, description)


# --- HAProxy processes ----------------------------------------------------------------------------


def _mark_joining(group: TargetGroup, joining: set[tuple[str, str]]) -> TargetGroup:
    backend = backend_name(group)
    targets = tuple(
        replace(target, joining=(backend, target.instance_id) in joining and not target.draining)
        for target in group.targets
    )
    return replace(group, targets=targets)


def _with_server_state(config: str, state_file: Path) -> str:
    """Keep server states (UP/DOWN and check counters) across reloads."""
    lines = config.splitlines()
    out: list[str] = []
    for line in lines:
        out.append(line)
        if line.strip() == "global":
            out.append(f"    server-state-file {state_file}")
        elif line.strip().startswith("defaults"):
            out.append("    load-server-state-from-file global")
    return "\n".join(out) + "\n"


def _check_config(config_file: Path) -> None:
    result = subprocess.run(
        [HAPROXY, "-c", "-q", "-f", str(config_file)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LocalRegionError(
            f"HAProxy rejects {config_file}: {(result.stderr or result.stdout).strip()}"
        )


def _start_haproxy(running: _Running) -> None:
    running.pid_file.unlink(missing_ok=True)
    # A dead HAProxy's socket file: the wait below is for the new one's.
    running.stats_socket.unlink(missing_ok=True)
    _run_haproxy(running, [])


def _reload_haproxy(running: _Running, old_pid: int) -> None:
    # -x takes the listening sockets from the old process: no connection refused during reload;
    # -sf lets the old process finish its connections, then exit.
    _run_haproxy(running, ["-x", str(running.stats_socket), "-sf", str(old_pid)])


def _run_haproxy(running: _Running, extra: list[str]) -> None:
    command = [HAPROXY, "-D", "-f", str(running.config_file), "-p", str(running.pid_file), *extra]
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=_START_SECONDS
    )
    if result.returncode != 0:
        raise LocalRegionError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
    if not wait_until(lambda: running.stats_socket.exists(), _START_SECONDS):
        raise LocalRegionError(f"HAProxy did not open {running.stats_socket}")


def _haproxy_pid(running: _Running) -> int | None:
    return live_pid_from_file(running.pid_file, running.config_file)


def _command(stats_socket: Path, command: str) -> str:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(_SOCKET_TIMEOUT_SECONDS)
            connection.connect(str(stats_socket))
            connection.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
    except OSError as error:
        log.debug("HAProxy socket %s: %s", stats_socket, error)
        return ""
    return b"".join(chunks).decode(errors="replace")


def _bring_in_down(running: _Running, backend: str, server: str) -> None:
    """Take a joining server out of maintenance, down, and confirm it: a command lost to a busy
    host would leave it in maintenance, which the next reload (without `disabled`) would end
    with the server UP and serving before any check."""
    command = (
        f"set server {backend}/{server} state ready; set server {backend}/{server} health down"
    )

    def out_of_maintenance() -> bool:
        _command(running.stats_socket, command)
        status = next(
            (
                r.get("status", "")
                for r in _stat_rows(running.stats_socket)
                if (r.get("pxname"), r.get("svname")) == (backend, server)
            ),
            "",
        )
        return bool(status) and not status.startswith("MAINT")

    if not wait_until(out_of_maintenance, _START_SECONDS, interval=0.1):
        log.warning("%s/%s did not come out of maintenance", backend, server)


def _save_server_state(running: _Running) -> None:
    """The servers' states as the running HAProxy has them, for the next one to start from.

    Every known server must be in it: right after a reload the previous process may still
    answer on the stats socket it handed over, with the servers it had (measured: a joining
    server missing from the file started UP in the next process and got requests)."""
    deadline = time.monotonic() + _SOCKET_TIMEOUT_SECONDS
    while True:
        state = _command(running.stats_socket, "show servers state")
        # No answer (HAProxy dead or restarting): the file keeps the last states it gave.
        if not state or running.known <= _servers_in_state(state):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if state:
        # Renamed into place: a HAProxy starting meanwhile never reads half a file.
        partial = running.state_file.with_suffix(".partial")
        partial.write_text(state, encoding="utf-8")
        partial.replace(running.state_file)


def _servers_in_state(state: str) -> set[tuple[str, str]]:
    """(backend, server) of each line of `show servers state` (be_id be_name srv_id srv_name
    ...), after its version line and its header."""
    servers = set()
    for line in state.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and not line.startswith("#"):
            servers.add((fields[1], fields[3]))
    return servers


def _server_rows(running: _Running) -> list[dict[str, str]]:
    """HAProxy's server rows, or while it does not answer (killed, restarting) the last ones it
    gave: an ALB node failing does not change its targets' health."""
    rows = _stat_rows(running.stats_socket)
    if rows:
        running.last_rows = rows
    return rows or running.last_rows


def _stat_rows(stats_socket: Path) -> list[dict[str, str]]:
    """Server rows of `show stat` (pxname, svname, status, check_status, check_code, ...)."""
    text = _command(stats_socket, "show stat -1 4 -1")
    if not text.startswith("# "):
        return []
    return list(csv.DictReader(io.StringIO(text[2:])))


def haproxy_processes(directory: Path) -> list[int]:
    """HAProxy processes running a configuration under directory (found by command line)."""
    return processes_named_with_files_under(HAPROXY, directory)


def remove_load_balancers(state_dir: Path) -> None:
    """Every HAProxy of the region of state_dir, its files and its hosts entries: from any
    process (`down` after a killed daemon)."""
    _remove(_directory(state_dir), _hosts_block(state_dir))


def _directory(state_dir: Path) -> Path:
    return state_dir.absolute() / "load-balancers"


def _hosts_block(state_dir: Path, hosts_file: Path | None = None) -> HostsBlock:
    return HostsBlock(
        hosts_file or default_hosts_file(), f"webfleet region {region_tag(state_dir)}"
    )


def _remove(directory: Path, hosts: HostsBlock) -> None:
    for pid in haproxy_processes(directory):
        stop_process(pid, _STOP_SECONDS, name="HAProxy")
    hosts.remove()
    shutil.rmtree(directory, ignore_errors=True)


def _put_log_object(account_id: str, bucket: str, key: str, body: bytes) -> None:
    from webfleet.localregion.elb import hooks as elbv2_hooks  # imports moto

    elbv2_hooks.put_log_object(account_id, bucket, key, body)
