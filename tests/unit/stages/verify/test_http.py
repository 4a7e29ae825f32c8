"""verify's HTTP checks: verdicts on what the ALB answered; webfleet.traffic's real requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import cycle

import pytest

from webfleet.stages.verify.http import (
    check_distribution,
    check_listeners,
    check_target_health,
    check_version,
    distribution_verdict,
    matcher_accepts,
)
from webfleet.traffic import AlbTarget, Answer, Listener, fetch, hostnames, instance_named

HTTP = Listener("HTTP", 80, "forward")
ALB = AlbTarget("demo-alb.local", (HTTP,), "/healthz", "200")


@pytest.mark.parametrize(
    ("matcher", "status", "accepted"),
    [
        ("200", 200, True),
        ("200", 204, False),
        ("200,204", 204, True),
        ("200-299", 250, True),
        ("200-299", 301, False),
    ],
)
def test_matcher(matcher: str, status: int, accepted: bool) -> None:
    assert matcher_accepts(matcher, status) is accepted


def test_forward_listener_passes_on_the_matcher_code_and_names_what_it_saw() -> None:
    (ok,) = check_listeners(ALB, lambda _l, _p: Answer(200, "i-1", "1.0.0"))
    assert ok.passed and ok.detail == "GET /healthz → 200 from i-1"
    (bad,) = check_listeners(ALB, lambda _l, _p: Answer(500, "i-2", "1.0.0"))
    assert not bad.passed
    assert bad.detail == "GET /healthz → 500 from i-2 (matcher 200)"
    assert bad.target == "demo-alb.local:80"
    (down,) = check_listeners(ALB, lambda _l, _p: Answer(None, error="connection refused"))
    assert not down.passed and "no answer (connection refused)" in down.detail


def test_redirect_listener_must_send_301_to_the_same_path_on_https() -> None:
    redirect = Listener("HTTP", 80, "redirect_https", redirect_port=443)
    https = Listener("HTTPS", 443, "forward")
    alb = AlbTarget("demo-alb.local", (redirect, https), "/healthz", "200")
    assert alb.serving == https

    def answer(location: str, status: int = 301) -> object:
        def fetch_answer(listener: Listener, path: str) -> Answer:
            if listener.protocol == "HTTPS":
                return Answer(200, "i-1", tls="TLSv1.3, certificate sha256 ab…")
            return Answer(status, location=location.format(path=path))

        return fetch_answer

    good = check_listeners(alb, answer("https://demo-alb.local:443{path}"))  # type: ignore[arg-type]
    assert [c.passed for c in good] == [True, True]
    assert "TLSv1.3" in good[1].detail
    implicit_port = check_listeners(alb, answer("https://demo-alb.local{path}"))  # type: ignore[arg-type]
    assert implicit_port[0].passed
    wrong = check_listeners(alb, answer("http://demo-alb.local{path}"))  # type: ignore[arg-type]
    assert not wrong[0].passed and "expected https://demo-alb.local:443/healthz" in wrong[0].detail
    forwarded = check_listeners(alb, answer("", status=200))  # type: ignore[arg-type]
    assert not forwarded[0].passed and "expected a 301 redirect" in forwarded[0].detail


def test_distribution_needs_every_instance_within_the_bound() -> None:
    answers = [Answer(200, "i-1"), Answer(200, "i-2"), Answer(200, "i-1")]
    assert distribution_verdict(["i-1", "i-2"], answers, 20) == (
        True,
        "3 requests: i-1 x2, i-2 x1",
    )
    passed, detail = distribution_verdict(["i-1", "i-2"], answers[:1] * 20, 20)
    assert not passed and "never answered within 20 requests: i-2" in detail
    passed, detail = distribution_verdict(["i-1"], [Answer(200, "i-9"), Answer(200, "i-1")], 20)
    assert not passed and "not InService: i-9" in detail
    passed, detail = distribution_verdict(["i-1"], [Answer(502), Answer(200, "i-1")], 20)
    assert not passed and "failed: 502 x1" in detail


def test_distribution_stops_once_every_instance_answered() -> None:
    answers = cycle([Answer(200, "i-1"), Answer(200, "i-2")])
    check, seen = check_distribution(ALB, ["i-1", "i-2"], lambda _l, _p: next(answers))
    assert check.passed and len(seen) == 2
    only_one = cycle([Answer(200, "i-1")])
    check, seen = check_distribution(ALB, ["i-1", "i-2", "i-3"], lambda _l, _p: next(only_one))
    assert not check.passed and len(seen) == 30  # 10 per instance
    down = cycle([Answer(None, error="connection refused")])
    check, seen = check_distribution(ALB, ["i-1", "i-2"], lambda _l, _p: next(down))
    assert not check.passed and len(seen) == 3  # gives up on a listener that never answers
    assert "no answer (connection refused) x3" in check.detail


def test_version_check() -> None:
    answers = [Answer(200, "i-1", "1.0.1"), Answer(200, "i-2", "1.0.0")]
    check = check_version(ALB, answers, "1.0.1")
    assert not check.passed
    assert check.detail == "expected 1.0.1; saw 1.0.0 x1, 1.0.1 x1 (wrong on i-2=1.0.0)"
    assert check_version(ALB, answers[:1], "1.0.1").passed
    from_the_balancer = check_version(ALB, [Answer(503)] * 4, "1.0.1")
    assert not from_the_balancer.passed
    assert from_the_balancer.detail == "expected 1.0.1; no answer came from the app (503 x4)"
    unknown = check_version(ALB, answers, None)
    assert unknown.skipped and unknown.passed


def test_an_app_that_names_no_instance_or_version_has_those_checks_skipped() -> None:
    anonymous = cycle([Answer(200)])
    check, seen = check_distribution(ALB, ["i-1", "i-2"], lambda _l, _p: next(anonymous))
    assert check.skipped and check.passed
    assert "sends no X-Instance-Id or X-Served-By" in check.detail
    version = check_version(ALB, seen, "1.0.1")
    assert version.skipped and "sends no X-App-Version" in version.detail
    # Errors are never skipped over: a 502 with no names fails as before.
    broken = cycle([Answer(502)])
    check, seen = check_distribution(ALB, ["i-1"], lambda _l, _p: next(broken))
    assert not check.passed and not check.skipped
    assert not check_version(ALB, seen, "1.0.1").passed


def test_served_by_hostnames_name_the_instance() -> None:
    known = {**hostnames("i-1", "10.42.1.5"), **hostnames("i-2", None)}
    assert instance_named(Answer(200, served_by="ip-10-42-1-5"), known).instance_id == "i-1"
    resolved = instance_named(Answer(200, served_by="ip-10-42-1-5.ec2.internal"), known)
    assert resolved.instance_id == "i-1"
    assert (
        instance_named(Answer(200, served_by="i-2.us-east-1.compute.internal"), known).instance_id
        == "i-2"
    )
    # An unknown host is a stranger (not InService), not nobody.
    assert instance_named(Answer(200, served_by="web-7"), known).instance_id == "web-7"
    # X-Instance-Id, when sent, wins.
    assert instance_named(Answer(200, "i-9", served_by="ip-10-42-1-5"), known).instance_id == "i-9"


def test_target_health_names_each_unhealthy_target_and_why() -> None:
    health = [
        {"Target": {"Id": "i-1"}, "TargetHealth": {"State": "healthy"}},
        {
            "Target": {"Id": "i-2"},
            "TargetHealth": {
                "State": "unhealthy",
                "Reason": "Target.ResponseCodeMismatch",
                "Description": "Health checks failed with these codes: [500]",
            },
        },
    ]
    check = check_target_health(health, ["i-1", "i-2", "i-3"], "targetgroup/demo/1")
    assert not check.passed
    assert check.detail.startswith(
        "i-2 unhealthy (Health checks failed with these codes: [500]); i-3 unregistered"
    )
    assert check_target_health(health[:1], ["i-1"], "tg").passed


class _App(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(301)
            self.send_header("Location", "https://example:443" + self.path)
        else:
            self.send_response(200 if self.path == "/healthz" else 500)
            self.send_header("X-Instance-Id", "i-0abc")
            self.send_header("X-App-Version", "1.2.3")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fetch_reads_the_app_headers_and_does_not_follow_redirects(server: int) -> None:
    listener = Listener("HTTP", server, "forward")
    answer = fetch("127.0.0.1", listener, "/healthz")
    assert (answer.status, answer.instance_id, answer.version) == (200, "i-0abc", "1.2.3")
    redirect = fetch("127.0.0.1", listener, "/redirect?x=1")
    assert redirect.status == 301 and redirect.location == "https://example:443/redirect?x=1"


def test_fetch_reports_refused_connections_and_failed_tls(server: int) -> None:
    refused = fetch("127.0.0.1", Listener("HTTP", 1, "forward"), "/")
    assert refused.status is None and refused.error == "connection refused"
    not_tls = fetch("127.0.0.1", Listener("HTTPS", server, "forward"), "/healthz")
    assert not_tls.status is None and not not_tls.ok
