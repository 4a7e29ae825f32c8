"""webfleet/localregion/haproxy_config.py: the HAProxy configuration of one ALB.

Every configuration these tests generate is also checked by the installed HAProxy (`haproxy -c`,
no warning allowed), and one test runs HAProxy with it in front of two small Python backends.
"""

from __future__ import annotations

import http.client
import http.server
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from webfleet.localregion.elb.haproxy_config import (
    Action,
    Condition,
    HealthCheck,
    Listener,
    LoadBalancer,
    Rule,
    Target,
    TargetGroup,
    render_haproxy_config,
    sticky_cookie_value,
)
from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.runtime.ports import free_port

HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed")
pytestmark = needs_haproxy

STATS = Path("/run/webfleet/lb/stats.sock")
PIDS = Path("/run/webfleet/lb/haproxy.pid")
CERT = "<the test's PEM>"  # replaced by a real self-signed PEM before rendering

# The location an ALB's default HTTP → HTTPS redirect builds: same host, path and query.
HTTPS_DEFAULTS = "https://%[req.hdr(host),field(1,:)]/%[path,regsub(^/,)]%[query,regsub(^,?)]"

CHECK = HealthCheck(
    protocol="HTTP",
    path="/healthz",
    port="traffic-port",
    matcher="200",
    interval_seconds=30,
    timeout_seconds=5,
    healthy_threshold=5,
    unhealthy_threshold=2,
)
WEB = TargetGroup(
    arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef",
    name="web",
    protocol="HTTP",
    port=8080,
    algorithm="round_robin",
    stickiness_enabled=False,
    stickiness_seconds=86400,
    deregistration_delay_seconds=300,
    health_check=CHECK,
    targets=(
        Target("i-0000000000000000a", "10.0.1.10", 8080),
        Target("i-0000000000000000b", "10.0.2.10", 8080),
    ),
)
API = replace(
    WEB,
    arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/fedcba9876543210",
    name="api",
    targets=(Target("i-0000000000000000c", "10.0.1.11", 9000),),
)
FORWARD_WEB = Action(type="forward", target_group_arn=WEB.arn)
FORWARD_API = Action(type="forward", target_group_arn=API.arn)
TO_HTTPS = Action(
    type="redirect", redirect_protocol="HTTPS", redirect_port="443", redirect_status="HTTP_301"
)
HTTP = Listener(
    arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/site/1/80",
    protocol="HTTP",
    port=80,
    certificate_pem=None,
    default_actions=(FORWARD_WEB,),
    rules=(),
)
HTTPS = replace(HTTP, arn=HTTP.arn[:-2] + "443", protocol="HTTPS", port=443, certificate_pem=CERT)
LB = LoadBalancer(
    arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/site/1",
    name="site",
    address="127.77.0.3",
    listeners=(HTTP,),
    target_groups=(WEB, API),
)


def with_listener(listener: Listener, **changes: object) -> LoadBalancer:
    return replace(LB, listeners=(replace(listener, **changes),))  # type: ignore[arg-type]


def with_group(**changes: object) -> LoadBalancer:
    return replace(LB, target_groups=(replace(WEB, **changes), API))  # type: ignore[arg-type]


def with_check(**changes: object) -> LoadBalancer:
    return with_group(health_check=replace(CHECK, **changes))  # type: ignore[arg-type]


def with_rules(*rules: Rule, default: Action = FORWARD_WEB) -> LoadBalancer:
    return with_listener(HTTP, rules=rules, default_actions=(default,))


def path_rule(priority: int, *patterns: str, action: Action = FORWARD_API) -> Rule:
    return Rule(priority, (Condition("path-pattern", patterns),), (action,))


def fixed(status: str, body: str | None = None, content_type: str | None = None) -> Action:
    return Action(
        type="fixed-response",
        fixed_status_code=status,
        fixed_content_type=content_type,
        fixed_message_body=body,
    )


# --- what the configuration says -----------------------------------------------------------------

# (load balancer, section title, lines that section holds in this order; other lines may come
# between them). {pem} is the test's certificate file.
CASES = [
    pytest.param(
        LB,
        "global",
        [
            "maxconn 4096",
            f"pidfile {PIDS}",
            f"stats socket {STATS} mode 600 level admin expose-fd listeners",
            "hard-stop-after 300s",
        ],
        id="global",
    ),
    pytest.param(
        replace(LB, idle_timeout_seconds=120),
        "defaults",
        [
            "mode http",
            "timeout connect 1s",
            "timeout client 120s",
            "timeout server 120s",
            "option redispatch",
            "retries 3",
        ],
        id="defaults-idle-timeout",
    ),
    pytest.param(
        LB,
        "frontend listener_80",
        [
            "bind 127.77.0.3:80",
            "option forwardfor",
            "http-request set-header X-Forwarded-Proto http",
            "http-request set-header X-Forwarded-Port 80",
            "default_backend tg_web",
        ],
        id="listener-forward",
    ),
    pytest.param(
        with_listener(HTTPS),
        "frontend listener_443",
        [
            "bind 127.77.0.3:443 ssl crt {pem} alpn h2,http/1.1",
            "http-request set-header X-Forwarded-Proto https",
            "http-request set-header X-Forwarded-Port 443",
            "default_backend tg_web",
        ],
        id="listener-https",
    ),
    pytest.param(
        with_listener(HTTP, default_actions=(TO_HTTPS,)),
        "frontend listener_80",
        [f'http-request redirect location "{HTTPS_DEFAULTS}" code 301'],
        id="listener-redirect-to-https-defaults",
    ),
    pytest.param(
        with_listener(
            HTTP,
            port=8080,
            default_actions=(
                Action(
                    type="redirect",
                    redirect_protocol="#{protocol}",
                    redirect_port="#{port}",
                    redirect_host="www.example.com",
                    redirect_path="/new/#{path}",
                    redirect_query="from=#{host}&discount=100%",
                    redirect_status="HTTP_302",
                ),
            ),
        ),
        "frontend listener_8080",
        [
            'http-request redirect location "http://www.example.com:8080/new/%[path,regsub(^/,)]'
            '?from=%[req.hdr(host),field(1,:)]&discount=100%%" code 302'
        ],
        id="listener-redirect-components",
    ),
    pytest.param(
        with_listener(
            HTTPS,
            default_actions=(
                Action(
                    type="redirect",
                    redirect_protocol="#{protocol}",
                    redirect_port="#{port}",
                    redirect_path="/",
                    redirect_query="",
                    redirect_status="HTTP_301",
                ),
            ),
        ),
        "frontend listener_443",
        ['http-request redirect location "https://%[req.hdr(host),field(1,:)]/" code 301'],
        id="listener-redirect-default-port-and-no-query",
    ),
    pytest.param(
        with_listener(HTTP, default_actions=(fixed("404", "Not here", "text/html"),)),
        "frontend listener_80",
        ['http-request return status 404 content-type text/html string "Not here"'],
        id="listener-fixed-response",
    ),
    pytest.param(
        with_listener(
            HTTP, default_actions=(fixed("503", 'say "no" \\ $HOME # 100%\n\tline 2\r\x01'),)
        ),
        "frontend listener_80",
        [
            "http-request return status 503 content-type text/plain "
            'string "say \\"no\\" \\\\ \\$HOME # 100%\\n\\tline 2\\r\\x01"'
        ],
        id="fixed-response-escaping",
    ),
    pytest.param(
        with_listener(HTTP, default_actions=(fixed("204"),)),
        "frontend listener_80",
        ["http-request return status 204"],
        id="fixed-response-without-body",
    ),
    pytest.param(
        with_rules(path_rule(10, "/api/*")),
        "frontend listener_80",
        [
            "acl rule_matched var(txn.rule) -m found",
            "# priority 10",
            'acl rule10_1 path_reg "^/api/.*\\$"',
            "http-request set-var(txn.rule) int(10) if !rule_matched rule10_1",
            "use_backend tg_api if { var(txn.rule) -m int 10 }",
            "default_backend tg_web",
        ],
        id="rule-path",
    ),
    pytest.param(
        with_rules(Rule(10, (Condition("host-header", ("API.example.com",)),), (FORWARD_API,))),
        "frontend listener_80",
        [
            'acl rule10_1 req.hdr(host),field(1,:) -i -m reg "^API\\\\.example\\\\.com\\$"',
            "http-request set-var(txn.rule) int(10) if !rule_matched rule10_1",
        ],
        id="rule-host",
    ),
    pytest.param(
        with_rules(
            Rule(
                10,
                (
                    Condition("host-header", ("*.example.com",)),
                    Condition("path-pattern", ("/v?/*",)),
                ),
                (FORWARD_API,),
            )
        ),
        "frontend listener_80",
        [
            'acl rule10_1 req.hdr(host),field(1,:) -i -m reg "^.*\\\\.example\\\\.com\\$"',
            'acl rule10_2 path_reg "^/v./.*\\$"',
            "http-request set-var(txn.rule) int(10) if !rule_matched rule10_1 rule10_2",
        ],
        id="rule-host-and-path-wildcards",
    ),
    pytest.param(
        with_rules(path_rule(10, "/api", "/api/*", "/img/??.png")),
        "frontend listener_80",
        ['acl rule10_1 path_reg "^/api\\$" "^/api/.*\\$" "^/img/..\\\\.png\\$"'],
        id="rule-several-values",
    ),
    pytest.param(
        with_rules(path_rule(10, "/a+b(c)[d]{e}|f^g$h.i\\j'k\"l~@:&")),
        "frontend listener_80",
        [
            'acl rule10_1 path_reg "^/a\\\\+b\\\\(c\\\\)\\\\[d\\\\]\\\\{e\\\\}\\\\|f\\\\^g'
            '\\\\\\$h\\\\.i\\\\\\\\j\'k\\"l~@:&\\$"'
        ],
        id="rule-regex-special-characters",
    ),
    pytest.param(
        with_rules(
            path_rule(30, "/c/*", action=FORWARD_WEB),
            path_rule(10, "/a/*", action=fixed("403", "no")),
            path_rule(20, "/b/*"),
            default=TO_HTTPS,
        ),
        "frontend listener_80",
        [
            "# priority 10",
            'acl rule10_1 path_reg "^/a/.*\\$"',
            "http-request return status 403 content-type text/plain string no if !rule_matched "
            "rule10_1",
            "# priority 20",
            "http-request set-var(txn.rule) int(20) if !rule_matched rule20_1",
            "# priority 30",
            "http-request set-var(txn.rule) int(30) if !rule_matched rule30_1",
            f'http-request redirect location "{HTTPS_DEFAULTS}" code 301 if !rule_matched',
            "use_backend tg_api if { var(txn.rule) -m int 20 }",
            "use_backend tg_web if { var(txn.rule) -m int 30 }",
        ],
        id="rules-by-priority-then-default",
    ),
    pytest.param(
        with_rules(
            Rule(5, (Condition("path-pattern", ("/old/*",)),), (TO_HTTPS,)),
        ),
        "frontend listener_80",
        [
            f'http-request redirect location "{HTTPS_DEFAULTS}" code 301 if !rule_matched rule5_1',
            "default_backend tg_web",
        ],
        id="rule-redirect",
    ),
    pytest.param(
        LB,
        "backend tg_web",
        [
            f"# {WEB.arn}",
            "balance roundrobin",
            "option httpchk",
            "http-check send meth GET uri /healthz",
            "http-check expect status 200",
            "timeout check 5s",
            "server i-0000000000000000a 10.0.1.10:8080 check inter 30s fall 2 rise 5",
            "server i-0000000000000000b 10.0.2.10:8080 check inter 30s fall 2 rise 5",
        ],
        id="target-group",
    ),
    pytest.param(
        with_group(algorithm="least_outstanding_requests"),
        "backend tg_web",
        ["balance leastconn"],
        id="least-outstanding-requests",
    ),
    pytest.param(
        with_group(stickiness_enabled=True, stickiness_seconds=3600),
        "backend tg_web",
        [
            "cookie AWSALB insert indirect nocache maxlife 3600s",
            "server i-0000000000000000a 10.0.1.10:8080 check inter 30s fall 2 rise 5 "
            f"cookie {sticky_cookie_value(WEB.arn, 'i-0000000000000000a')}",
            "server i-0000000000000000b 10.0.2.10:8080 check inter 30s fall 2 rise 5 "
            f"cookie {sticky_cookie_value(WEB.arn, 'i-0000000000000000b')}",
        ],
        id="stickiness",
    ),
    pytest.param(
        with_check(
            path="/status?full=1",
            port="8081",
            matcher="200-299",
            interval_seconds=7,
            timeout_seconds=3,
            healthy_threshold=4,
            unhealthy_threshold=6,
        ),
        "backend tg_web",
        [
            'http-check send meth GET uri "/status?full=1"',
            "http-check expect status 200-299",
            "timeout check 3s",
            "server i-0000000000000000a 10.0.1.10:8080 check inter 7s fall 6 rise 4 port 8081",
        ],
        id="health-check-fields",
    ),
    pytest.param(
        with_check(matcher="200, 302"),
        "backend tg_web",
        ["http-check expect status 200,302"],
        id="health-check-matcher-list",
    ),
    pytest.param(
        with_check(matcher="200,300-308"),
        "backend tg_web",
        ["http-check expect status 200,300-308"],
        id="health-check-matcher-list-and-range",
    ),
    pytest.param(
        with_check(protocol="HTTPS"),
        "backend tg_web",
        [
            "server i-0000000000000000a 10.0.1.10:8080 check inter 30s fall 2 rise 5 "
            "check-ssl verify none"
        ],
        id="health-check-https",
    ),
    pytest.param(
        with_group(protocol="HTTPS"),
        "backend tg_web",
        [
            "server i-0000000000000000a 10.0.1.10:8080 check inter 30s fall 2 rise 5 "
            "ssl verify none no-check-ssl"
        ],
        id="https-targets-http-health-check",
    ),
    pytest.param(
        with_group(
            stickiness_enabled=True,
            deregistration_delay_seconds=45,
            targets=(
                Target("i-0000000000000000b", "10.0.2.10", 8080, draining=True),
                Target("i-0000000000000000a", "10.0.1.10", 8080),
            ),
        ),
        "backend tg_web",
        [
            "# A draining target is disabled: it gets no new request, not even a sticky one, as",
            "server i-0000000000000000a 10.0.1.10:8080 check inter 30s fall 2 rise 5 "
            f"cookie {sticky_cookie_value(WEB.arn, 'i-0000000000000000a')}",
            "server i-0000000000000000b 10.0.2.10:8080 check inter 30s fall 2 rise 5 "
            f"cookie {sticky_cookie_value(WEB.arn, 'i-0000000000000000b')} disabled",
        ],
        id="draining-target",
    ),
    pytest.param(
        replace(
            LB,
            target_groups=(
                replace(WEB, deregistration_delay_seconds=45),
                replace(API, deregistration_delay_seconds=0),
            ),
        ),
        "global",
        ["hard-stop-after 45s"],
        id="hard-stop-after-longest-deregistration-delay",
    ),
    pytest.param(
        with_group(targets=()),
        "backend tg_web",
        ["balance roundrobin", "option httpchk", "timeout check 5s"],
        id="empty-target-group",
    ),
    pytest.param(
        with_group(
            targets=(
                Target("i-0000000000000000a", "10.0.1.10", 8081),
                Target("i-0000000000000000a", "10.0.1.10", 8080),
            )
        ),
        "backend tg_web",
        [
            "server i-0000000000000000a_8080 10.0.1.10:8080 check inter 30s fall 2 rise 5",
            "server i-0000000000000000a_8081 10.0.1.10:8081 check inter 30s fall 2 rise 5",
        ],
        id="instance-on-two-ports",
    ),
]


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate and its key in one PEM file, as the runtime writes them."""
    directory = tmp_path_factory.mktemp("cert")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    combined = directory / "site.pem"
    combined.write_text(cert.read_text() + key.read_text())
    return combined


def render(lb: LoadBalancer, pem: Path) -> str:
    listeners = tuple(
        replace(listener, certificate_pem=str(pem))
        if listener.certificate_pem == CERT
        else listener
        for listener in lb.listeners
    )
    return render_haproxy_config(
        replace(lb, listeners=listeners), stats_socket=STATS, pid_file=PIDS
    )


def section(config: str, title: str) -> list[str]:
    """The lines of one section, without their indentation."""
    lines = config.splitlines()
    start = lines.index(title) + 1
    body = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        body.append(line.strip())
    return body


def check_with_haproxy(config: str, directory: Path) -> None:
    """`haproxy -c` accepts the configuration and has nothing to warn about."""
    assert HAPROXY is not None
    path = directory / "haproxy.cfg"
    path.write_text(config)
    result = subprocess.run(
        [HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{output}\n{config}"
    assert "[WARNING]" not in output and "[ALERT]" not in output, f"{output}\n{config}"


@pytest.mark.parametrize(("lb", "title", "expected"), CASES)
def test_section_holds_lines_in_order(
    lb: LoadBalancer, title: str, expected: list[str], pem: Path, tmp_path: Path
) -> None:
    config = render(lb, pem)
    lines = section(config, title)
    position = 0
    for wanted in (line.replace("{pem}", str(pem)) for line in expected):
        assert wanted in lines[position:], f"{wanted!r} not after line {position} of\n{config}"
        position = lines.index(wanted, position) + 1
    check_with_haproxy(config, tmp_path)


def test_ordering_of_the_model_does_not_change_the_text(pem: Path) -> None:
    lb = replace(
        LB,
        listeners=(
            replace(HTTP, rules=(path_rule(20, "/b/*"), path_rule(10, "/a/*", action=TO_HTTPS))),
            HTTPS,
        ),
        target_groups=(API, replace(WEB, stickiness_enabled=True)),
    )
    shuffled = replace(
        lb,
        listeners=tuple(
            replace(listener, rules=tuple(reversed(listener.rules)))
            for listener in reversed(lb.listeners)
        ),
        target_groups=tuple(
            replace(group, targets=tuple(reversed(group.targets)))
            for group in reversed(lb.target_groups)
        ),
    )
    assert render(lb, pem) == render(lb, pem) == render(shuffled, pem)
    config = render(lb, pem)
    assert config.index("frontend listener_80") < config.index("frontend listener_443")
    assert config.index("backend tg_api") < config.index("backend tg_web")


def test_only_the_terminal_action_counts(pem: Path) -> None:
    two = with_listener(HTTP, default_actions=(FORWARD_API, FORWARD_WEB))
    assert "default_backend tg_web" in section(render(two, pem), "frontend listener_80")


@pytest.mark.parametrize(
    ("lb", "message"),
    [
        pytest.param(
            with_rules(Rule(1, (Condition("http-header", ("x",)),), (FORWARD_API,))),
            "http-header condition",
            id="unsupported-condition",
        ),
        pytest.param(
            with_rules(Rule(1, (Condition("path-pattern", ()),), (FORWARD_API,))),
            "has no values",
            id="condition-without-values",
        ),
        pytest.param(
            with_listener(HTTP, default_actions=(Action(type="authenticate-oidc"), FORWARD_WEB)),
            "authenticate-oidc action",
            id="unsupported-action",
        ),
        pytest.param(
            with_listener(HTTP, default_actions=(Action("forward", target_group_arn="arn:x"),)),
            "arn:x, which is not among",
            id="forward-to-unknown-target-group",
        ),
        pytest.param(
            with_listener(HTTPS, certificate_pem=None), "has no certificate", id="https-no-cert"
        ),
        pytest.param(with_listener(HTTP, protocol="TCP"), "uses TCP", id="not-http"),
        pytest.param(
            with_rules(path_rule(7, "/a"), path_rule(7, "/b")), "priority 7", id="same-priority"
        ),
        pytest.param(
            with_listener(HTTP, default_actions=(replace(TO_HTTPS, redirect_status="HTTP_307"),)),
            "HTTP_307",
            id="redirect-status",
        ),
        pytest.param(
            with_listener(HTTP, default_actions=(replace(TO_HTTPS, redirect_path="x"),)),
            "start it with /",
            id="redirect-path",
        ),
        pytest.param(
            with_listener(HTTP, default_actions=(fixed("302", "x"),)),
            "status code 302",
            id="fixed-status",
        ),
        pytest.param(with_group(algorithm="weighted_random"), "weighted_random", id="algorithm"),
        pytest.param(with_check(matcher="200-"), "matcher '200-'", id="matcher-open-range"),
        pytest.param(with_check(matcher="299-200"), "matcher '299-200'", id="matcher-backwards"),
        pytest.param(with_check(matcher="ok"), "matcher 'ok'", id="matcher-not-a-code"),
        pytest.param(with_check(port="eighty"), "port eighty", id="health-check-port"),
        pytest.param(
            replace(LB, listeners=(HTTP, HTTP)), "several listeners on port 80", id="same-port"
        ),
    ],
)
def test_what_haproxy_cannot_do_is_refused_clearly(lb: LoadBalancer, message: str) -> None:
    with pytest.raises(LocalRegionError, match=message.replace("(", r"\(")):
        render_haproxy_config(lb, stats_socket=STATS, pid_file=PIDS)


# --- HAProxy running with it ---------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Backend

    def do_GET(self) -> None:
        status = self.server.health if self.path == "/healthz" else 200
        body = self.server.name.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Backend(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.name = name
        self.health = 200

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # HAProxy resets its health check connections once it has read the status


@dataclass
class _Response:
    status: int
    body: bytes
    location: str | None


@pytest.fixture
def backends() -> Iterator[dict[str, _Backend]]:
    servers = {name: _Backend(name, free_port()) for name in ("a", "b")}
    threads = [threading.Thread(target=server.serve_forever) for server in servers.values()]
    for thread in threads:
        thread.start()
    yield servers
    for server in servers.values():
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=10)


@pytest.fixture
def run_haproxy(tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """Runs HAProxy as the runtime does (master-worker) until the test ends."""
    processes: list[subprocess.Popen[bytes]] = []

    def run(config: str) -> None:
        assert HAPROXY is not None
        path = tmp_path / "haproxy.cfg"
        path.write_text(config)
        with (tmp_path / "haproxy.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [HAPROXY, "-W", "-S", str(tmp_path / "master.sock"), "-f", str(path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    yield run
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _get(port: int, path: str, host: str = "site.example.com") -> _Response:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return _Response(response.status, response.read(), response.getheader("Location"))
    finally:
        connection.close()


def _wait_for_port(port: int, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"HAProxy did not listen on {port}:\n{log.read_text()}")


def _server_status(stats_socket: Path, backend: str, server: str) -> str:
    """The status HAProxy reports for one server (what describe_target_health will read)."""
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(stats_socket))
        client.sendall(b"show stat\n")
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    header, *rows = data.decode().splitlines()
    columns = header.lstrip("# ").split(",")
    for row in rows:
        fields = dict(zip(columns, row.split(","), strict=False))
        if fields.get("pxname") == backend and fields.get("svname") == server:
            return fields["status"]
    raise AssertionError(f"no {backend}/{server} in\n{data.decode()}")


def test_haproxy_routes_balances_and_checks_health(
    backends: dict[str, _Backend], run_haproxy: Callable[[str], None], tmp_path: Path
) -> None:
    check = replace(CHECK, interval_seconds=1, healthy_threshold=2, unhealthy_threshold=2)
    both = replace(
        WEB,
        health_check=check,
        targets=(
            Target("i-a", "127.0.0.1", backends["a"].server_address[1]),
            Target("i-b", "127.0.0.1", backends["b"].server_address[1]),
        ),
    )
    only_b = replace(API, health_check=check, targets=(both.targets[1],))
    body = 'down "for" now\n$HOME 100%'
    listener = replace(
        HTTP,
        port=free_port(),
        rules=(
            Rule(40, (Condition("host-header", ("OLD.example.*",)),), (TO_HTTPS,)),
            path_rule(30, "/maintenance", action=fixed("503", body)),
            path_rule(20, "/only-b/fixed", action=fixed("403", "rule 20")),
            path_rule(15, "/x.y+(z)$", action=fixed("200", "special")),
            path_rule(10, "/only-b/*"),
        ),
    )
    stats = tmp_path / "stats.sock"
    config = render_haproxy_config(
        replace(LB, address="127.0.0.1", listeners=(listener,), target_groups=(both, only_b)),
        stats_socket=stats,
        pid_file=tmp_path / "haproxy.pid",
    )
    check_with_haproxy(config, tmp_path)
    run_haproxy(config)
    _wait_for_port(listener.port, tmp_path / "haproxy.log")
    port = listener.port

    # Round robin: one target, then the other.
    bodies = [_get(port, "/").body for _ in range(4)]
    assert sorted(bodies[:2]) == [b"a", b"b"] and bodies[2:] == bodies[:2]
    # The path rule; and priority 10 wins over priority 20 although 20 is a fixed response.
    assert {_get(port, path).body for path in ("/only-b/x", "/only-b/y", "/only-b/fixed")} == {b"b"}
    assert _get(port, "/x.y+(z)$").body == b"special"
    assert _get(port, "/xzy+(z)$").body in (b"a", b"b")
    maintenance = _get(port, "/maintenance")
    assert (maintenance.status, maintenance.body) == (503, body.encode())
    moved = _get(port, "/a/b.html?x=1&y=%20", host="old.Example.com:80")
    assert (moved.status, moved.location) == (301, "https://old.Example.com/a/b.html?x=1&y=%20")
    assert _get(port, "/", host="old.example.org").location == "https://old.example.org/"

    # b's health check fails: after two checks a second apart it gets no more requests.
    backends["b"].health = 500
    deadline = time.monotonic() + 15
    # (Each target group checks its targets itself, as on an ALB.)
    while {_server_status(stats, backend, "i-b") for backend in ("tg_web", "tg_api")} != {"DOWN"}:
        assert time.monotonic() < deadline, (tmp_path / "haproxy.log").read_text()
        time.sleep(0.2)
    assert {_get(port, "/").body for _ in range(6)} == {b"a"}
    # No healthy target left in the group: 503, as from an ALB.
    assert _get(port, "/only-b/x").status == 503


def test_sticky_cookie_values_are_opaque_and_one_per_target() -> None:
    values = {sticky_cookie_value(WEB.arn, f"i-000000000000000{n}") for n in "ab"}
    assert len(values) == 2
    assert all(re.fullmatch("[0-9a-f]{32}", value) for value in values)
    assert sticky_cookie_value(WEB.arn, "i-000000000000000a") in values  # stable
