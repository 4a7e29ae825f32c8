"""The HAProxy 2.6 configuration of one local-region ALB, generated from its ELBv2 model.

Pure: the runtime fills the dataclasses below from moto's models, writes the text this module
returns and runs or reloads HAProxy with it. Names in the generated configuration, which the
runtime reads back from the stats socket (`show stat`):

- frontend `listener_<port>`, one per listener;
- backend `tg_<target group name>`, one per target group;
- server `<instance id>`, one per target, or `<instance id>_<port>` when the same instance is
  registered on several ports of one target group.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from webfleet.localregion.elb.access_logs import CAPTURES, haproxy_log_format
from webfleet.localregion.errors import LocalRegionError


@dataclass(frozen=True)
class HealthCheck:
    protocol: str  # "HTTP" | "HTTPS"
    path: str  # e.g. "/healthz"
    port: str  # "traffic-port" or a port number as string
    matcher: str  # ALB HttpCode matcher: "200", "200,302", "200-299"
    interval_seconds: int
    timeout_seconds: int
    healthy_threshold: int
    unhealthy_threshold: int


@dataclass(frozen=True)
class Target:
    instance_id: str
    address: str  # private IPv4
    port: int
    draining: bool = False  # deregistered, within the deregistration delay: no new requests
    # Registered since the balancer's last reload. HAProxy starts a new server UP, so it is
    # written disabled and the runtime brings it out already down (an ALB's new target is
    # `initial`: no traffic until it passes its checks).
    joining: bool = False


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    name: str
    protocol: str  # "HTTP" (HTTPS backends optional: `ssl verify none`)
    port: int
    algorithm: str  # "round_robin" | "least_outstanding_requests"
    stickiness_enabled: bool
    stickiness_seconds: int  # lb_cookie duration
    deregistration_delay_seconds: int
    health_check: HealthCheck
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Condition:
    field: str  # "path-pattern" | "host-header"
    values: tuple[str, ...]  # ALB wildcards: * any chars, ? one char; host-header case-insensitive


@dataclass(frozen=True)
class Action:
    type: str  # "forward" | "redirect" | "fixed-response"
    target_group_arn: str | None = None  # forward (single target group)
    redirect_protocol: str | None = None  # "HTTPS" | "HTTP" | "#{protocol}"
    redirect_port: str | None = None  # "443" | "#{port}"
    redirect_host: str | None = None  # "#{host}" or a host
    redirect_path: str | None = None  # "/#{path}" or a path
    redirect_query: str | None = None  # "#{query}" or a query
    redirect_status: str | None = None  # "HTTP_301" | "HTTP_302"
    fixed_status_code: str | None = None  # "403"
    fixed_content_type: str | None = None  # "text/plain"
    fixed_message_body: str | None = None


@dataclass(frozen=True)
class Rule:
    priority: int
    conditions: tuple[Condition, ...]  # all must match (AND); values within one condition OR
    actions: tuple[Action, ...]  # the last one is the terminal action (forward/redirect/fixed)


@dataclass(frozen=True)
class Listener:
    arn: str
    protocol: str  # "HTTP" | "HTTPS"
    port: int
    certificate_pem: str | None  # path of a PEM file, cert + key (HTTPS), written by the runtime
    default_actions: tuple[Action, ...]
    rules: tuple[Rule, ...]  # any order given; evaluated lowest priority first


@dataclass(frozen=True)
class LoadBalancer:
    arn: str
    name: str
    address: str  # the loopback IPv4 it binds, e.g. 127.77.0.3
    listeners: tuple[Listener, ...]
    target_groups: tuple[TargetGroup, ...]  # every target group any listener/rule forwards to
    idle_timeout_seconds: int = 60
    # Access logs on: the datagram socket (an HAProxy address) the runtime reads them from.
    access_log_socket: str | None = None


_INDENT = "    "
_BALANCE = {"round_robin": "roundrobin", "least_outstanding_requests": "leastconn"}
_REDIRECT_CODES = {"HTTP_301": "301", "HTTP_302": "302"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
# What an ALB puts in place of each #{...} in a redirect, as HAProxy log-format expressions;
# #{protocol} and #{port} are the listener's own, known when the configuration is written.
_HOST_EXPRESSION = "%[req.hdr(host),field(1,:)]"  # the Host header without its port
_PATH_EXPRESSION = "%[path,regsub(^/,)]"  # ALB's #{path} has no leading slash
_QUERY_EXPRESSION = "%[query]"
# Measured on 2.6: an absent query string yields nothing here, a present one "?" and the query.
_OPTIONAL_QUERY_EXPRESSION = "%[query,regsub(^,?)]"
_PLACEHOLDER = re.compile(r"#\{(protocol|host|port|path|query)\}")
_WORD_SAFE = re.compile(r"[A-Za-z0-9_./:@+=,-]+")
_REGEX_SPECIAL = frozenset("\\.^$|()[]{}+*?")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def render_haproxy_config(lb: LoadBalancer, *, stats_socket: Path, pid_file: Path) -> str:
    """The whole haproxy.cfg for one load balancer: same input, byte-identical text."""
    groups = _groups_by_arn(lb)
    ports = Counter(listener.port for listener in lb.listeners)
    taken = sorted(port for port, count in ports.items() if count > 1)
    if taken:
        raise LocalRegionError(
            f"Load balancer {lb.name} has several listeners on port {taken[0]}: keep one."
        )
    sections = [
        _global_section(lb, stats_socket, pid_file),
        _defaults_section(lb),
        *(
            _frontend(lb, listener, groups)
            for listener in sorted(lb.listeners, key=lambda item: item.port)
        ),
        *(_backend(group) for group in sorted(lb.target_groups, key=lambda item: item.name)),
    ]
    header = f"# Generated by webfleet for load balancer {_comment(lb.name)}; do not edit.\n"
    header += f"# {_comment(lb.arn)}\n"
    return header + "\n" + "\n".join(sections)


def _section(title: str, lines: list[str]) -> str:
    return "".join([title + "\n", *(f"{_INDENT}{line}\n" for line in lines)])


def _global_section(lb: LoadBalancer, stats_socket: Path, pid_file: Path) -> str:
    delays = [group.deregistration_delay_seconds for group in lb.target_groups]
    lines = [
        "maxconn 4096",
        f"pidfile {_quote(str(pid_file))}",
        # expose-fd listeners: a reload (SIGUSR2 to the master) hands the bound sockets over to
        # the new worker, so no connection is refused while it starts.
        f"stats socket {_quote(str(stats_socket))} mode 600 level admin expose-fd listeners",
        # After a reload the old worker finishes the requests it holds, as a deregistering
        # target does on an ALB, but no longer than the longest deregistration delay.
        f"hard-stop-after {max([1, *delays])}s",
    ]
    if lb.access_log_socket:
        lines.append(f"log {lb.access_log_socket} len 8192 format raw local0")
    return _section("global", lines)


def _defaults_section(lb: LoadBalancer) -> str:
    idle = lb.idle_timeout_seconds
    lines = [
        "mode http",
        # A connect on the VPC's bridge takes well under a millisecond; one that has not
        # finished in a second is to an instance that went away (its address answers no ARP),
        # and the retry below goes to another server before the client gives up.
        "timeout connect 1s",
        f"timeout client {idle}s",
        f"timeout server {idle}s",
        # Measured (tests/e2e/test_group_health.py): with these, a backend that dies loses no
        # GET. retry-on also covers a request the server accepted and then closed without
        # answering (an app stopped mid-request): a replay, safe for idempotent requests.
        "option redispatch",
        "retries 3",
        "retry-on conn-failure empty-response",
    ]
    return _section("defaults", lines)


def _frontend(lb: LoadBalancer, listener: Listener, groups: dict[str, TargetGroup]) -> str:
    scheme = listener.protocol.lower()
    bind = f"bind {lb.address}:{listener.port}"
    if listener.protocol == "HTTPS":
        if not listener.certificate_pem:
            raise LocalRegionError(
                f"HTTPS listener on port {listener.port} of {lb.name} has no certificate: "
                f"give it an ACM certificate."
            )
        bind += f" ssl crt {_quote(listener.certificate_pem)} alpn h2,http/1.1"
    elif listener.protocol != "HTTP":
        raise LocalRegionError(
            f"Listener on port {listener.port} of {lb.name} uses {listener.protocol}: "
            f"an application load balancer listens on HTTP or HTTPS."
        )
    lines = [
        f"# {_comment(listener.arn)}",
        bind,
        # The headers an ALB adds to every request it forwards.
        "option forwardfor",
        f"http-request set-header X-Forwarded-Proto {scheme}",
        f"http-request set-header X-Forwarded-Port {listener.port}",
    ]
    if lb.access_log_socket:
        lines += [
            "# Access logs: a line per request, which the runtime turns into ELB's entries.",
            "log global",
            "option dontlognull",
            *(f"http-request capture req.hdr({header}) len 512" for header in CAPTURES),
            f"log-format {haproxy_log_format(lb.arn)}",
        ]
    forwards: list[tuple[int, str]] = []
    rules = sorted(listener.rules, key=lambda item: item.priority)
    if rules:
        priorities = Counter(rule.priority for rule in rules)
        duplicated = sorted(priority for priority, count in priorities.items() if count > 1)
        if duplicated:
            raise LocalRegionError(
                f"Listener on port {listener.port} of {lb.name} has several rules with priority "
                f"{duplicated[0]}: give each rule its own priority."
            )
        lines += [
            "# Rules, lowest priority first. HAProxy runs every http-request rule before any",
            "# use_backend, so a forward only records its priority in txn.rule, later rules do",
            "# nothing once it is set, and the use_backend lines below read it.",
            "acl rule_matched var(txn.rule) -m found",
        ]
    for rule in rules:
        acls = []
        lines.append(f"# priority {rule.priority}")
        for index, condition in enumerate(rule.conditions, start=1):
            name = f"rule{rule.priority}_{index}"
            lines.append(f"acl {name} {_condition_test(condition, lb, listener)}")
            acls.append(name)
        guard = " ".join(["!rule_matched", *acls])
        action = _terminal_action(rule.actions, lb, listener)
        if action.type == "forward":
            backend = backend_name(_forwarded_group(action, groups, lb, listener))
            lines.append(f"http-request set-var(txn.rule) int({rule.priority}) if {guard}")
            forwards.append((rule.priority, backend))
        else:
            lines.append(f"{_final_response(action, listener)} if {guard}")
    default = _terminal_action(listener.default_actions, lb, listener)
    lines.append("# default action")
    if default.type != "forward":
        lines.append(_final_response(default, listener) + (" if !rule_matched" if rules else ""))
    lines += [
        f"use_backend {backend} if {{ var(txn.rule) -m int {priority} }}"
        for priority, backend in forwards
    ]
    if default.type == "forward":
        backend = backend_name(_forwarded_group(default, groups, lb, listener))
        lines.append(f"default_backend {backend}")
    return _section(f"frontend listener_{listener.port}", lines)


def _terminal_action(actions: tuple[Action, ...], lb: LoadBalancer, listener: Listener) -> Action:
    where = f"listener on port {listener.port} of {lb.name}"
    if not actions:
        raise LocalRegionError(f"A rule of the {where} has no action: give it one.")
    for action in actions:
        if action.type not in ("forward", "redirect", "fixed-response"):
            raise LocalRegionError(
                f"The {where} uses a {action.type} action, which the local region's load "
                f"balancers do not support: use forward, redirect or fixed-response."
            )
    return actions[-1]


def _forwarded_group(
    action: Action, groups: dict[str, TargetGroup], lb: LoadBalancer, listener: Listener
) -> TargetGroup:
    group = groups.get(action.target_group_arn or "")
    if group is None:
        raise LocalRegionError(
            f"The listener on port {listener.port} of {lb.name} forwards to target group "
            f"{action.target_group_arn}, which is not among the load balancer's target groups."
        )
    return group


def _condition_test(condition: Condition, lb: LoadBalancer, listener: Listener) -> str:
    """ACL criterion and patterns; several patterns on one acl line match if any matches."""
    if not condition.values:
        raise LocalRegionError(
            f"A {condition.field} condition of the listener on port {listener.port} of "
            f"{lb.name} has no values: give it at least one."
        )
    patterns = " ".join(_quote(_wildcard_regex(value)) for value in condition.values)
    if condition.field == "path-pattern":
        return f"path_reg {patterns}"  # the path without the query string, case-sensitive
    if condition.field == "host-header":
        return f"req.hdr(host),field(1,:) -i -m reg {patterns}"  # the host without its port
    raise LocalRegionError(
        f"The listener on port {listener.port} of {lb.name} has a {condition.field} condition, "
        f"which the local region's load balancers do not support: use path-pattern or "
        f"host-header."
    )


def _wildcard_regex(pattern: str) -> str:
    """An ALB wildcard pattern (* any characters, ? one) as an anchored regex."""
    parts = ["^"]
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char in _REGEX_SPECIAL:
            parts.append("\\" + char)
        else:
            parts.append(char)
    parts.append("$")
    return "".join(parts)


def _final_response(action: Action, listener: Listener) -> str:
    """The http-request rule for a redirect or fixed-response action, without its condition."""
    if action.type == "redirect":
        code = _REDIRECT_CODES.get(action.redirect_status or "")
        if code is None:
            raise LocalRegionError(
                f"A redirect of the listener on port {listener.port} has status code "
                f"{action.redirect_status}: use HTTP_301 or HTTP_302."
            )
        location = _redirect_location(action, listener)
        return f"http-request redirect location {_quote(location)} code {code}"
    status = action.fixed_status_code or ""
    if not re.fullmatch(r"[245][0-9][0-9]", status):
        raise LocalRegionError(
            f"A fixed response of the listener on port {listener.port} has status code "
            f"{action.fixed_status_code}: use a 2XX, 4XX or 5XX code."
        )
    line = f"http-request return status {status}"
    # Measured: HAProxy 2.6 refuses `string ""` and ignores a content type without a payload.
    if action.fixed_message_body:
        content_type = action.fixed_content_type or "text/plain"
        line += f" content-type {_quote(content_type)} string {_quote(action.fixed_message_body)}"
    return line


def _redirect_location(action: Action, listener: Listener) -> str:
    """The Location as a log-format string, built like an ALB's from its five components."""
    static = {"protocol": listener.protocol, "port": str(listener.port)}
    protocol = _PLACEHOLDER.sub(
        lambda match: static.get(match[1], match[0]), action.redirect_protocol or "#{protocol}"
    ).lower()
    port = _PLACEHOLDER.sub(
        lambda match: static.get(match[1], match[0]), action.redirect_port or "#{port}"
    )
    if protocol not in _DEFAULT_PORTS or not port.isdigit():
        raise LocalRegionError(
            f"A redirect of the listener on port {listener.port} goes to protocol "
            f"{action.redirect_protocol} and port {action.redirect_port}: use HTTP or HTTPS and "
            f"a port number (or #{{protocol}} and #{{port}})."
        )
    path = action.redirect_path or "/#{path}"
    if not path.startswith("/"):
        raise LocalRegionError(
            f"A redirect of the listener on port {listener.port} has path {path}: start it with /."
        )
    host = _expand(action.redirect_host or "#{host}", listener)
    location = f"{protocol}://{host}"
    if int(port) != _DEFAULT_PORTS[protocol]:  # like an ALB, no port when it is the default
        location += f":{int(port)}"
    location += _expand(path, listener)
    query = "#{query}" if action.redirect_query is None else action.redirect_query
    if query == "#{query}":
        location += _OPTIONAL_QUERY_EXPRESSION
    elif query:
        location += "?" + _expand(query, listener)
    return location


def _expand(component: str, listener: Listener) -> str:
    """A redirect component with its #{...} placeholders as log-format expressions."""
    expressions = {
        "protocol": listener.protocol,
        "port": str(listener.port),
        "host": _HOST_EXPRESSION,
        "path": _PATH_EXPRESSION,
        "query": _QUERY_EXPRESSION,
    }
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(component):
        parts.append(_log_format_literal(component[position : match.start()]))
        parts.append(expressions[match[1]])
        position = match.end()
    parts.append(_log_format_literal(component[position:]))
    return "".join(parts)


def _log_format_literal(text: str) -> str:
    return text.replace("%", "%%")  # measured: %% is a literal % in a redirect location


def _backend(group: TargetGroup) -> str:
    check = group.health_check
    algorithm = _BALANCE.get(group.algorithm)
    if algorithm is None:
        raise LocalRegionError(
            f"Target group {group.name} uses load balancing algorithm {group.algorithm}: "
            f"use round_robin or least_outstanding_requests."
        )
    lines = [f"# {_comment(group.arn)}", f"balance {algorithm}"]
    if group.stickiness_enabled:
        lines.append(f"cookie AWSALB insert indirect nocache maxlife {group.stickiness_seconds}s")
    lines += [
        "option httpchk",
        f"http-check send meth GET uri {_quote(check.path)}",
        # Measured: 2.6 takes an ALB matcher as it is ("200", "200,302", "200-299,302").
        f"http-check expect status {_status_codes(check.matcher, group)}",
        f"timeout check {check.timeout_seconds}s",
    ]
    if any(target.draining for target in group.targets):
        lines += [
            "# A draining target is disabled: it gets no new request, not even a sticky one, as",
            "# on an ALB. The requests it is serving finish in the worker that HAProxy's reload",
            "# leaves running (until hard-stop-after), and the runtime drops the target from",
            "# this file once the deregistration delay is over.",
        ]
    lines += _servers(group)
    return _section(f"backend {backend_name(group)}", lines)


def _servers(group: TargetGroup) -> list[str]:
    check = group.health_check
    if check.protocol not in ("HTTP", "HTTPS") or group.protocol not in ("HTTP", "HTTPS"):
        raise LocalRegionError(
            f"Target group {group.name} uses {group.protocol} with {check.protocol} health "
            f"checks: use HTTP or HTTPS."
        )
    if check.port != "traffic-port" and not check.port.isdigit():
        raise LocalRegionError(
            f"Target group {group.name} checks health on port {check.port}: "
            f"use traffic-port or a port number."
        )
    targets = sorted(group.targets, key=lambda item: (item.instance_id, item.port, item.address))
    registrations = Counter(target.instance_id for target in targets)
    lines = []
    for target in targets:
        name = _NAME_UNSAFE.sub("_", target.instance_id)
        if registrations[target.instance_id] > 1:
            name += f"_{target.port}"
        words = [
            f"server {name} {target.address}:{target.port}",
            f"check inter {check.interval_seconds}s",
            f"fall {check.unhealthy_threshold} rise {check.healthy_threshold}",
        ]
        if check.port != "traffic-port":
            words.append(f"port {int(check.port)}")
        if group.protocol == "HTTPS":
            # Targets' certificates are self-signed, and ALBs do not verify them either.
            words.append("ssl verify none")
            if check.protocol == "HTTP":
                words.append("no-check-ssl")
        elif check.protocol == "HTTPS":
            words.append("check-ssl verify none")
        if group.stickiness_enabled:
            words.append(f"cookie {sticky_cookie_value(group.arn, name)}")
        if target.draining or target.joining:
            words.append("disabled")
        lines.append(" ".join(words))
    return lines


def sticky_cookie_value(target_group_arn: str, server: str) -> str:
    """The AWSALB value that sends a client back to one target: opaque, as an ALB's is (it
    names no instance), and stable across reloads so that sessions stay where they are."""
    return hashlib.sha256(f"{target_group_arn} {server}".encode()).hexdigest()[:32]


def _status_codes(matcher: str, group: TargetGroup) -> str:
    """The ALB matcher, checked: comma-separated codes or low-high ranges."""
    items = [item.strip() for item in matcher.split(",")]
    code = r"[1-5][0-9][0-9]"
    for item in items:
        low, dash, high = item.partition("-")
        if not re.fullmatch(code, low) or (dash and not (re.fullmatch(code, high) and low < high)):
            raise LocalRegionError(
                f"Target group {group.name} has health check matcher {matcher!r}: use codes "
                f'and ranges such as "200", "200,302" or "200-299".'
            )
    return ",".join(items)


def _groups_by_arn(lb: LoadBalancer) -> dict[str, TargetGroup]:
    names = Counter(group.name for group in lb.target_groups)
    duplicated = sorted(name for name, count in names.items() if count > 1)
    if duplicated:
        raise LocalRegionError(
            f"Load balancer {lb.name} has several target groups named {duplicated[0]}: "
            f"target group names are unique in a region."
        )
    return {group.arn: group for group in lb.target_groups}


def backend_name(group: TargetGroup) -> str:
    return "tg_" + _NAME_UNSAFE.sub("_", group.name)


def _quote(word: str) -> str:
    """One configuration word, double-quoted with HAProxy's escapes when it needs quoting.

    Measured on 2.6: inside double quotes \\" \\\\ \\$ \\n \\r \\t \\xNN are escapes, a bare $
    starts an environment variable, and # and ' are plain characters.
    """
    if _WORD_SAFE.fullmatch(word):
        return word
    escaped = []
    for char in word:
        if char in '"\\$':
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\r":
            escaped.append("\\r")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\x{ord(char):02x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _comment(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)
