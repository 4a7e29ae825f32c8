"""Read moto's ELBv2 records into the load balancers HAProxy should be running.

Pure translation: moto's API shapes (listeners, rules, actions, target groups and their
attributes, registered instances) → haproxy_config's typed description. Addresses of instance
targets come from EC2; HTTPS listeners' certificates from ACM (written by the caller).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from webfleet.localregion.elb.access_logs import Destination
from webfleet.localregion.elb.haproxy_config import (
    Action,
    Condition,
    HealthCheck,
    Listener,
    Rule,
    Target,
    TargetGroup,
)


@dataclass(frozen=True)
class BalancerRecord:
    """One application load balancer as moto holds it, with what HAProxy needs besides."""

    arn: str
    name: str
    dns_name: str
    listeners: tuple[Listener, ...]
    target_groups: tuple[TargetGroup, ...]
    idle_timeout_seconds: int
    access_logs: Destination | None = None  # its access_logs.s3.* attributes, when enabled


# instance id → private IPv4 (None: no such instance, or not one that can serve)
AddressOf = Callable[[str], "str | None"]
# certificate ARN → path of a PEM file with the certificate chain and key
CertificateFile = Callable[[str], "str | None"]
# target group ARN → its targets still draining after their deregistration
Draining = Callable[[str], Iterable[Target]]


def balancer_record(
    balancer: Any,
    target_groups: dict[str, Any],
    address_of: AddressOf,
    certificate_file: CertificateFile,
    draining: Draining,
    account_id: str = "",
    region: str = "",
) -> BalancerRecord:
    listeners = tuple(
        _listener(listener, certificate_file)
        for listener in sorted(balancer.listeners.values(), key=lambda item: int(item.port))
    )
    used = sorted({arn for listener in listeners for arn in _forwarded_arns(listener)})
    groups = tuple(
        _target_group(target_groups[arn], address_of, draining)
        for arn in used
        if arn in target_groups
    )
    attributes = balancer.attrs
    idle = int(attributes.get("idle_timeout.timeout_seconds", 60) or 60)
    access_logs = None
    if str(attributes.get("access_logs.s3.enabled", "false")).lower() == "true":
        access_logs = Destination(
            bucket=str(attributes.get("access_logs.s3.bucket") or ""),
            prefix=str(attributes.get("access_logs.s3.prefix") or ""),
            account_id=account_id,
            region=region,
        )
    return BalancerRecord(
        balancer.arn, balancer.name, balancer.dns_name, listeners, groups, idle, access_logs
    )


def forwarded_target_groups(balancers: Iterable[Any]) -> set[str]:
    """ARNs of the target groups a listener or rule of these moto load balancers forwards to:
    the groups whose deregistered targets have requests in flight to drain."""
    return {
        arn
        for balancer in balancers
        if getattr(balancer, "type", "application") == "application"
        for listener in list(balancer.listeners.values())
        for arn in _forwarded_arns(_listener(listener, lambda _arn: None))
    }


def _forwarded_arns(listener: Listener) -> list[str]:
    actions = list(listener.default_actions)
    for rule in listener.rules:
        actions += rule.actions
    return [a.target_group_arn for a in actions if a.type == "forward" and a.target_group_arn]


def _listener(listener: Any, certificate_file: CertificateFile) -> Listener:
    certificate = None
    if listener.protocol == "HTTPS":
        arns = [c.get("CertificateArn") for c in listener.certificates if isinstance(c, dict)]
        arns += [c for c in listener.certificates if isinstance(c, str)]
        certificate = next((certificate_file(arn) for arn in arns if arn), None)
    rules = tuple(
        Rule(
            priority=int(rule.priority),
            conditions=tuple(_condition(c) for c in rule.conditions),
            actions=tuple(_action(a) for a in rule.actions),
        )
        for rule in listener.rules.values()
        if not getattr(rule, "is_default", False)
    )
    return Listener(
        arn=listener.arn,
        protocol=listener.protocol,
        port=int(listener.port),
        certificate_pem=certificate,
        default_actions=tuple(_action(a) for a in listener.default_actions),
        rules=rules,
    )


def _condition(condition: dict[str, Any]) -> Condition:
    field = condition.get("Field", "")
    config_key = {"path-pattern": "PathPatternConfig", "host-header": "HostHeaderConfig"}
    values = condition.get(config_key.get(field, ""), {}).get("Values") or condition.get(
        "Values", []
    )
    return Condition(field=field, values=tuple(str(v) for v in values))


def _action(action: Any) -> Action:
    data: dict[str, Any] = action.data if hasattr(action, "data") else dict(action)
    kind = str(data.get("Type", ""))
    if kind == "forward":
        arn = data.get("TargetGroupArn")
        if not arn:
            groups = data.get("ForwardConfig", {}).get("TargetGroups", [])
            arn = groups[0].get("TargetGroupArn") if groups else None
        return Action(type=kind, target_group_arn=arn)
    if kind == "redirect":
        redirect = data.get("RedirectConfig", {})
        return Action(
            type=kind,
            redirect_protocol=redirect.get("Protocol", "#{protocol}"),
            redirect_port=redirect.get("Port", "#{port}"),
            redirect_host=redirect.get("Host", "#{host}"),
            redirect_path=redirect.get("Path", "/#{path}"),
            redirect_query=redirect.get("Query", "#{query}"),
            redirect_status=redirect.get("StatusCode", "HTTP_301"),
        )
    if kind == "fixed-response":
        fixed = data.get("FixedResponseConfig", {})
        return Action(
            type=kind,
            fixed_status_code=str(fixed.get("StatusCode", "200")),
            fixed_content_type=fixed.get("ContentType"),
            fixed_message_body=fixed.get("MessageBody"),
        )
    return Action(type=kind)


def _target_group(group: Any, address_of: AddressOf, draining: Draining) -> TargetGroup:
    attributes = group.attributes
    matcher = (getattr(group, "matcher", None) or {}).get("HttpCode", "200")
    port = int(group.port)
    targets = []
    for target in group.targets.values():
        address = address_of(target["Id"])
        if address is not None:
            targets.append(Target(target["Id"], address, int(target.get("Port") or port)))
    registered = {t.instance_id for t in targets}
    targets += [t for t in draining(group.arn) if t.instance_id not in registered]
    return TargetGroup(
        arn=group.arn,
        name=group.name,
        protocol=group.protocol or "HTTP",
        port=port,
        algorithm=str(attributes.get("load_balancing.algorithm.type", "round_robin")),
        stickiness_enabled=str(attributes.get("stickiness.enabled", "false")).lower() == "true",
        stickiness_seconds=int(attributes.get("stickiness.lb_cookie.duration_seconds", 86400)),
        deregistration_delay_seconds=int(
            attributes.get("deregistration_delay.timeout_seconds", 300)
        ),
        health_check=HealthCheck(
            protocol=group.health_check_protocol or "HTTP",
            path=group.health_check_path or "/",
            port=str(group.health_check_port or "traffic-port"),
            matcher=str(matcher),
            interval_seconds=int(group.health_check_interval_seconds),
            timeout_seconds=int(group.health_check_timeout_seconds),
            healthy_threshold=int(group.healthy_threshold_count),
            unhealthy_threshold=int(group.unhealthy_threshold_count),
        ),
        targets=tuple(sorted(targets, key=lambda t: t.instance_id)),
    )
