"""A newly registered target gets no request before it passes its checks, across the reloads
that register it (a real HAProxy, a real HTTP server as the target). HAProxy starts a new
server UP; an ALB's new target is `initial` and gets no traffic until it is healthy."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.unit.localregion.elb.test_draining import runtime
from tests.unit.localregion.elb.test_haproxy_config import HTTP, WEB
from webfleet.localregion.elb.haproxy_config import Target, TargetGroup
from webfleet.localregion.elb.load_balancers import (
    LoadBalancerRuntime,
    _server_rows,
    _servers_in_state,
)
from webfleet.localregion.elb.snapshot import BalancerRecord

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")

CHECK_INTERVAL_SECONDS = 1
HEALTHY_THRESHOLD = 3


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def target_port() -> Iterator[int]:
    server = _Server(_Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def lbs() -> Iterator[LoadBalancerRuntime]:
    # A short directory: HAProxy's stats socket path must fit a sockaddr_un (108 bytes), and
    # pytest's tmp_path does not leave room for it.
    with tempfile.TemporaryDirectory(prefix="wf-lb-") as directory:
        runtime_ = runtime(Path(directory))
        yield runtime_
        runtime_.stop()


def group_with(*targets: Target) -> TargetGroup:
    check = replace(
        WEB.health_check,
        interval_seconds=CHECK_INTERVAL_SECONDS,
        timeout_seconds=1,
        healthy_threshold=HEALTHY_THRESHOLD,
    )
    return replace(WEB, health_check=check, targets=targets)


def balancer(group: TargetGroup) -> BalancerRecord:
    return BalancerRecord(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789",
        "web",
        "web-1.us-east-1.elb.localhost",
        (HTTP,),  # HAProxy refuses a configuration with no listener
        (group,),
        60,
    )


def statuses(lbs: LoadBalancerRuntime) -> dict[str, str]:
    (running,) = lbs._running.values()
    return {row["svname"]: row["status"] for row in _server_rows(running)}


def test_a_joining_target_is_down_until_its_checks_pass(
    lbs: LoadBalancerRuntime, target_port: int
) -> None:
    first = Target("i-0000000000000000a", "127.0.0.1", target_port)
    second = Target("i-0000000000000000b", "127.0.0.1", target_port)
    lbs._apply(balancer(group_with(first)))
    assert statuses(lbs)[first.instance_id].startswith("DOWN")
    # The next reconcile writes it without `disabled`: the reload keeps it down.
    lbs._apply(balancer(group_with(first)))
    assert statuses(lbs)[first.instance_id].startswith("DOWN")
    deadline = time.monotonic() + 10 * CHECK_INTERVAL_SECONDS * HEALTHY_THRESHOLD
    while not statuses(lbs)[first.instance_id].startswith("UP"):
        assert time.monotonic() < deadline, statuses(lbs)
        time.sleep(0.2)

    # A second target joins a running balancer: down at once, through both reloads, while the
    # first stays UP.
    lbs._apply(balancer(group_with(first, second)))
    after_join = statuses(lbs)
    lbs._apply(balancer(group_with(first, second)))
    after_rewrite = statuses(lbs)
    assert after_join[second.instance_id].startswith("DOWN"), after_join
    assert after_rewrite[second.instance_id].startswith("DOWN"), after_rewrite
    assert after_rewrite[first.instance_id].startswith("UP"), after_rewrite


class _Failing(_Healthy):
    """Answers 503 to everything, saying so, and records the paths it was asked for."""

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        self.send_response(503)
        self.send_header("X-Target", "joining")
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    # A backlog for a hammering client and the checks, so that a slow CI host refuses none.
    request_queue_size = 128
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.paths: list[str] = []


def test_no_request_reaches_a_joining_target_before_its_checks_pass(
    lbs: LoadBalancerRuntime, target_port: int
) -> None:
    # The joining target answers 503 to everything (an app still starting behind its web
    # server): no client request may reach it, only its health checks.
    failing = _Server(_Failing)
    threading.Thread(target=failing.serve_forever, daemon=True).start()
    healthy = Target("i-0000000000000000a", "127.0.0.1", target_port)
    lbs._apply(balancer(group_with(healthy)))
    lbs._apply(balancer(group_with(healthy)))
    deadline = time.monotonic() + 10 * CHECK_INTERVAL_SECONDS * HEALTHY_THRESHOLD
    while not statuses(lbs).get(healthy.instance_id, "").startswith("UP"):
        assert time.monotonic() < deadline, statuses(lbs)
        time.sleep(0.2)
    (running,) = lbs._running.values()
    answers: list[tuple[int, str | None]] = []  # (status, the answering target's X-Target)
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"http://{running.address}/work", timeout=5) as reply:
                    answers.append((reply.status, reply.headers.get("X-Target")))
            except urllib.error.HTTPError as error:
                answers.append((error.code, error.headers.get("X-Target")))

    clients = [threading.Thread(target=hammer) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        for attempt in range(5):
            joining = Target(f"i-00000000000000{attempt:03d}", "127.0.0.1", failing.server_port)
            lbs._apply(balancer(group_with(healthy, joining)))
            time.sleep(0.1)
            lbs._apply(balancer(group_with(healthy, joining)))
            time.sleep(0.1)
            lbs._apply(balancer(group_with(healthy)))
            time.sleep(0.1)
    finally:
        stop.set()
        for client in clients:
            client.join()
        failing.shutdown()
        failing.server_close()
    assert answers and all(status == 200 for status, _ in answers[:10]), answers[:10]
    assert "/work" not in failing.paths, Counter(failing.paths)
    assert not [a for a in answers if a[1] == "joining"], Counter(answers)
    assert failing.paths, "the joining targets were never checked"


def test_the_saved_state_names_each_server_it_holds() -> None:
    # `show servers state` as HAProxy 2.6 prints it: a version line, a header, a line a server.
    state = (
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n"
        "3 tg_web 1 i-0000000000000000a 127.0.0.1 2 0\n"
        "3 tg_web 2 i-0000000000000000b 127.0.0.1 0 0\n"
    )
    assert _servers_in_state(state) == {
        ("tg_web", "i-0000000000000000a"),
        ("tg_web", "i-0000000000000000b"),
    }
    assert _servers_in_state("") == set()
