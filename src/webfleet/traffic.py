"""Requests through a load balancer, as a user's browser sends them: one at a time, or a stream.

verify's HTTP checks and failover, the rolling deploy's request stream and `invoke load` all
send their requests through here.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from webfleet.config import EnvironmentStack
from webfleet.fleet import Deployment

REQUEST_TIMEOUT_SECONDS = 5.0
INSTANCE_HEADER = "X-Instance-Id"
# The instance's hostname (ip-10-0-1-5, or i-0123… with resource names), as webfleet's static
# nginx and many apps send it: which server answered, the tutorials' "refresh until both answer".
SERVED_BY_HEADER = "X-Served-By"
VERSION_HEADER = "X-App-Version"
STREAM_INTERVAL_SECONDS = 0.1


@dataclass(frozen=True)
class Answer:
    """One request through the ALB: its status and the app's headers, or the error."""

    status: int | None
    instance_id: str | None = None
    version: str | None = None
    location: str | None = None
    error: str | None = None
    tls: str | None = None  # "TLSv1.3, certificate sha256 ab:cd:..." for HTTPS
    served_by: str | None = None  # X-Served-By: a hostname, see instance_named()

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 400

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        seen = f"{self.status}"
        if self.instance_id:
            seen += f" from {self.instance_id}"
        return seen


@dataclass(frozen=True)
class Listener:
    protocol: str  # "HTTP" or "HTTPS"
    port: int
    action: str  # "forward" or "redirect_https"
    redirect_port: int | None = None


@dataclass(frozen=True)
class AlbTarget:
    """What verify sends requests to: the ALB's DNS name and the stack's listeners."""

    dns_name: str
    listeners: tuple[Listener, ...]
    health_check_path: str
    matcher: str

    @property
    def serving(self) -> Listener:
        """The listener that serves the app: HTTPS when HTTP only redirects to it."""
        forwarding = [listener for listener in self.listeners if listener.action == "forward"]
        https = [listener for listener in forwarding if listener.protocol == "HTTPS"]
        return (https or forwarding)[0]


Fetch = Callable[[Listener, str], Answer]


def alb_target(stack: EnvironmentStack, deployment: Deployment) -> AlbTarget:
    """The deployed ALB with the listeners the stack gives it."""
    lb = stack.load_balancer
    listeners = [
        Listener(
            "HTTP",
            lb.http.port,
            lb.http.action,
            redirect_port=lb.https.port if lb.https is not None else None,
        )
    ]
    if lb.https is not None:
        listeners.append(Listener("HTTPS", lb.https.port, "forward"))
    return AlbTarget(
        dns_name=deployment.alb_dns_name,
        listeners=tuple(listeners),
        health_check_path=stack.health_check_path,
        matcher=lb.health_check.matcher,
    )


def fetch(dns_name: str, listener: Listener, path: str) -> Answer:
    """GET path from one listener of the ALB; no redirects are followed."""
    connection: http.client.HTTPConnection
    if listener.protocol == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(
            dns_name, listener.port, timeout=REQUEST_TIMEOUT_SECONDS, context=context
        )
    else:
        connection = http.client.HTTPConnection(
            dns_name, listener.port, timeout=REQUEST_TIMEOUT_SECONDS
        )
    try:
        connection.request("GET", path, headers={"User-Agent": "webfleet-verify"})
        response = connection.getresponse()
        response.read()
        tls = _tls_description(connection.sock) if listener.protocol == "HTTPS" else None
        return Answer(
            status=response.status,
            instance_id=response.getheader(INSTANCE_HEADER),
            version=response.getheader(VERSION_HEADER),
            location=response.getheader("Location"),
            tls=tls,
            served_by=response.getheader(SERVED_BY_HEADER),
        )
    except (OSError, http.client.HTTPException) as error:
        return Answer(status=None, error=_error_text(error))
    finally:
        connection.close()


def hostnames(instance_id: str, private_ip: str | None) -> dict[str, str]:
    """The hostnames EC2 gives an instance (IP name and resource name) -> its id."""
    names = {instance_id: instance_id}
    if private_ip:
        names["ip-" + private_ip.replace(".", "-")] = instance_id
    return names


def instance_named(answer: Answer, known: Mapping[str, str]) -> Answer:
    """The answer with its instance named from X-Served-By when the app sent no X-Instance-Id."""
    if answer.instance_id is not None or not answer.served_by:
        return answer
    host = answer.served_by.strip().split(".", 1)[0].lower()
    return replace(answer, instance_id=known.get(host, answer.served_by.strip()))


def _tls_description(sock: Any) -> str | None:
    if not isinstance(sock, ssl.SSLSocket):
        return None
    certificate = sock.getpeercert(binary_form=True) or b""
    fingerprint = hashlib.sha256(certificate).hexdigest()[:16]
    return f"{sock.version()}, certificate sha256 {fingerprint}…"


def _error_text(error: BaseException) -> str:
    if isinstance(error, socket.gaierror):
        return f"name does not resolve: {error.strerror}"
    if isinstance(error, TimeoutError | socket.timeout):
        return f"timed out after {REQUEST_TIMEOUT_SECONDS:.0f} s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the stream started
    answer: Answer


@dataclass
class RequestStream:
    """Requests back to back (paced) on a thread until stopped; keeps every answer."""

    fetch: Callable[[], Answer]
    interval: float = STREAM_INTERVAL_SECONDS
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0

    def start(self) -> RequestStream:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="webfleet-failover", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return list(self.samples)

    def _run(self) -> None:
        while not self._stop.is_set():
            answer = self.fetch()
            self.samples.append(Sample(round(time.monotonic() - self._started, 3), answer))
            self._stop.wait(self.interval)


def longest_outage(samples: Sequence[Sample]) -> float:
    """The longest stretch of failed answers, from the first failure of a run to the next success
    (or the last sample)."""
    longest = 0.0
    outage_start: float | None = None
    for sample in samples:
        if sample.answer.ok:
            if outage_start is not None:
                longest = max(longest, sample.at - outage_start)
                outage_start = None
        elif outage_start is None:
            outage_start = sample.at
    if outage_start is not None and samples:
        longest = max(longest, samples[-1].at - outage_start)
    return round(longest, 3)
