"""ALB access logs from HAProxy, published to S3 as ELB publishes them.

A balancer whose `access_logs.s3.enabled` attribute is on logs every request it answers, in the
log-format below, over a datagram socket this module reads. Each line becomes an ELB access log
entry (the fields of AWS's documentation, in its order), and every interval (ELB's is five
minutes) the entries of each balancer go to its bucket as one gzipped object, under the key ELB
uses: `<prefix>/AWSLogs/<account>/elasticloadbalancing/<region>/<yyyy>/<mm>/<dd>/<account>_
elasticloadbalancing_<region>_<load balancer id>_<end time>_<node ip>_<random>.log.gz`.
"""

from __future__ import annotations

import gzip
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger(__name__)

INTERVAL_ENV = "WEBFLEET_REGION_ACCESS_LOG_SECONDS"
DEFAULT_INTERVAL_SECONDS = 300.0  # ELB publishes a log file per node every 5 minutes
_DATAGRAM_BYTES = 16384
BIND_WAIT_SECONDS = 10.0

# What HAProxy writes per request, tab-separated; the balancer's ARN first, the user agent last
# (the only field that may hold a tab: it is split off with maxsplit). Captures 0 and 1 are the
# Host and User-Agent headers (haproxy_config declares them in this order).
_FIELDS = (
    "%Ts",  # accept time, seconds
    "%ms",  # its milliseconds
    "%Ta",  # total active time, ms
    "%ci",
    "%cp",
    "%si",
    "%sp",
    "%TR",  # time to receive the request headers, ms
    "%Tw",  # time in queues, ms
    "%Tc",  # time to connect to the server, ms
    "%Tr",  # server response time, ms (-1: no response)
    "%ST",
    "%U",  # bytes received from the client
    "%B",  # bytes sent to the client
    "%HM",
    "%HU",
    "%HV",
    "%b",
    "%fp",
    "%[ssl_fc]",
    "%[ssl_fc_cipher]",
    "%[ssl_fc_protocol]",
    "%[ssl_fc_sni]",
    "%[var(txn.rule)]",
    "%[capture.req.hdr(0)]",
    "%[capture.req.hdr(1)]",
)
CAPTURES = ("host", "user-agent")


def haproxy_log_format(balancer_arn: str) -> str:
    """The log-format line of a balancer's frontends (a quoted HAProxy string)."""
    return '"' + "\\t".join((balancer_arn, *_FIELDS)) + '"'


@dataclass(frozen=True)
class Destination:
    """Where one balancer's access logs go (its attributes), and whose they are."""

    bucket: str
    prefix: str
    account_id: str
    region: str


@dataclass(frozen=True)
class LoggedBalancer:
    """A balancer with access logs on, as the runtime runs it."""

    arn: str
    destination: Destination
    node_address: str
    target_groups: Mapping[str, str]  # HAProxy backend -> target group ARN

    @property
    def resource_id(self) -> str:
        """app/<name>/<id>, as ELB names a balancer in its logs."""
        return self.arn.split(":loadbalancer/", 1)[1]


@dataclass
class _Buffer:
    balancer: LoggedBalancer
    entries: list[str] = field(default_factory=list)


# (account, bucket, key, gzipped body) -> None; raises when the bucket is missing
PutObject = Callable[[str, str, str, bytes], None]


class AccessLogDelivery:
    """Reads the balancers' request logs and publishes them every interval."""

    def __init__(self, socket_name: str, put_object: PutObject) -> None:
        # An abstract socket (Linux): no path to fit in 108 bytes or to remove, and it goes
        # with the process that holds it. HAProxy writes to it as `abns@<name>`.
        self.socket_name = socket_name
        self._put_object = put_object
        self.interval = float(os.environ.get(INTERVAL_ENV) or DEFAULT_INTERVAL_SECONDS)
        self._buffers: dict[str, _Buffer] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    @property
    def haproxy_target(self) -> str:
        return f"abns@{self.socket_name}"

    def start(self) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        deadline = time.monotonic() + BIND_WAIT_SECONDS
        while True:
            try:
                # HAProxy addresses it with the whole sun_path (measured): NUL-padded to 108.
                self._socket.bind(b"\0" + self.socket_name.encode().ljust(107, b"\0"))
                break
            except OSError:
                # A killed daemon's socket goes when its last thread does.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._socket.settimeout(0.5)
        for target, name in ((self._read, "access-log-reader"), (self._publish, "access-logs")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)
        self.publish()  # what was logged since the last interval is not lost
        if self._socket is not None:
            self._socket.close()

    def configure(self, balancers: list[LoggedBalancer]) -> None:
        """The balancers that log now; entries of one that stopped logging are published."""
        with self._lock:
            wanted = {b.arn: b for b in balancers}
            for arn in list(self._buffers):
                if arn not in wanted:
                    self._publish_one(self._buffers.pop(arn))
            for arn, balancer in wanted.items():
                current = self._buffers.get(arn)
                self._buffers[arn] = _Buffer(balancer, current.entries if current else [])

    def receive(self, line: str) -> None:
        arn, _, fields = line.rstrip("\n").partition("\t")
        with self._lock:
            buffer = self._buffers.get(arn)
            if buffer is None:
                return  # logged before its access logs were turned off
            try:
                buffer.entries.append(elb_entry(fields, buffer.balancer))
            except (ValueError, IndexError) as error:
                log.warning("unreadable HAProxy log line %r: %s", line, error)

    def publish(self) -> None:
        with self._lock:
            for buffer in self._buffers.values():
                self._publish_one(buffer)

    def _publish_one(self, buffer: _Buffer) -> None:
        if not buffer.entries:
            return
        body = gzip.compress(("\n".join(buffer.entries) + "\n").encode())
        destination = buffer.balancer.destination
        key = object_key(buffer.balancer, datetime.now(UTC))
        try:
            self._put_object(destination.account_id, destination.bucket, key, body)
        except Exception as error:  # moto's MissingBucket and the like: ELB drops them too
            log.error("access logs of %s not delivered to %s: %s", buffer.balancer.arn, key, error)
        buffer.entries.clear()

    def _read(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                datagram = self._socket.recv(_DATAGRAM_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return
            self.receive(datagram.decode(errors="replace"))

    def _publish(self) -> None:
        while not self._stop.wait(self.interval):
            self.publish()


def elb_entry(fields: str, balancer: LoggedBalancer) -> str:
    """One ELB access log entry (HTTP/HTTPS) from the fields HAProxy logged."""
    values = fields.split("\t", len(_FIELDS) - 1)
    (accepted_s, accepted_ms, active, client_ip, client_port, server_ip, server_port,
     receive, queue, connect, response, status, received, sent, method, uri, version, backend,
     listener_port, ssl, cipher, protocol, sni, rule, host, user_agent) = values  # fmt: skip
    accepted = int(accepted_s) + int(accepted_ms) / 1000
    group = balancer.target_groups.get(backend)
    served = group is not None and server_ip not in ("", "-") and int(response) >= 0
    target = f"{server_ip}:{server_port}" if served else "-"
    scheme = "https" if ssl == "1" else "http"
    seconds = [int(receive) + max(0, int(queue)) + max(0, int(connect)), int(response), 0]
    if group is None:
        action = "redirect" if status in ("301", "302") else "fixed-response"
    else:
        action = "forward"
    request = f"{method} {scheme}://{host.split(':')[0]}:{listener_port}{uri} {version}"
    return " ".join(
        [
            scheme,
            _iso(accepted + int(active) / 1000),
            balancer.resource_id,
            f"{client_ip}:{client_port}",
            target,
            *(f"{value / 1000:.3f}" if served else "-1" for value in seconds),
            status,
            status if served else "-",
            received,
            sent,
            _quoted(request),
            _quoted(user_agent),
            cipher if scheme == "https" and cipher else "-",
            protocol if scheme == "https" and protocol else "-",
            group or "-",
            '"-"',  # trace_id: the local region's balancers add no X-Amzn-Trace-Id
            _quoted(sni or "-"),
            '"-"',  # chosen_cert_arn
            rule if rule and rule != "-" else "0",
            _iso(accepted),
            _quoted(action),
            '"-"',  # redirect_url
            '"-"',  # error_reason
            _quoted(target),
            _quoted(status if served else "-"),
            '"-"',  # classification
            '"-"',  # classification_reason
        ]
    )


def object_key(balancer: LoggedBalancer, end: datetime) -> str:
    destination = balancer.destination
    where = f"{destination.account_id}_elasticloadbalancing_{destination.region}"
    name = (
        f"{where}_{balancer.resource_id.replace('/', '.')}_{end:%Y%m%dT%H%MZ}_"
        f"{balancer.node_address}_{secrets.token_hex(4)}.log.gz"
    )
    path = (
        f"AWSLogs/{destination.account_id}/elasticloadbalancing/{destination.region}/"
        f"{end:%Y/%m/%d}/{name}"
    )
    return f"{destination.prefix.strip('/')}/{path}" if destination.prefix else path


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
