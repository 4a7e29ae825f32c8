"""Fixes to moto's ELBv2 API where its answers differ from AWS's in ways the region notices.

Each is a patch in the registry (api/patches.py), applied by the API app:

- ``fix_load_balancer_default_scheme``: a load balancer created without Scheme (Terraform sends
  it only for internal ones) has no scheme at all, instead of AWS's default internet-facing.
- ``fix_register_pending_targets``: a pending instance cannot be registered as a target, so an
  Auto Scaling group whose machines are still booting fails to create (InvalidTarget).
- ``fix_load_balancer_dns_name``: every load balancer named N is ``N-1.<region>.elb...``, so
  two regions (or a re-created balancer) hand out the same name for different balancers.
- ``fix_idempotent_creates``: a repeated CreateLoadBalancer makes a second balancer of the same
  name, a repeated CreateListener a second listener on the port, and a repeated
  CreateTargetGroup fails; ELB answers each with what exists when the settings are the same.
- ``fix_deletion_protection``: a load balancer with deletion protection is deleted anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from webfleet.localregion.api.patches import moto_patch


@moto_patch("elbv2.load_balancer_default_scheme")
def fix_load_balancer_default_scheme() -> None:
    """Give a load balancer created without Scheme AWS's default, ``internet-facing``.

    The provider sends Scheme only for internal load balancers; moto's handler passes the missing
    parameter on as None, over the model's own default, so the ALB has no scheme (and the local
    region could not tell an internet-facing ALB from an internal one).
    """
    from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer

    original_create = ELBv2Backend.create_load_balancer

    def create_load_balancer(self: ELBv2Backend, *args: Any, **kwargs: Any) -> FakeLoadBalancer:
        if kwargs.get("scheme") is None and len(args) < 4:
            kwargs["scheme"] = "internet-facing"
        return original_create(self, *args, **kwargs)

    ELBv2Backend.create_load_balancer = create_load_balancer  # type: ignore[method-assign]


@moto_patch("elbv2.register_pending_targets")
def fix_register_pending_targets() -> None:
    """Let a pending instance be registered in a target group, as ELB does.

    moto refuses anything not running; with real machines an Auto Scaling group registers its
    instances while they boot, so CreateAutoScalingGroup failed with InvalidTarget.
    """
    from moto.elbv2.exceptions import TargetNotRunning
    from moto.elbv2.models import FakeTargetGroup

    def register(self: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
        for target in targets:
            instance = self.ec2_backend.get_instance_by_id(target["Id"])
            if instance is not None and instance.state not in ("pending", "running"):
                raise TargetNotRunning(instance_id=target["Id"])
            self.targets[target["Id"]] = {
                "Id": target["Id"],
                "Port": target.get("Port", self.port),
            }
            self.deregistered_targets.pop(target["Id"], None)

    FakeTargetGroup.register = register  # type: ignore[method-assign]


@moto_patch("elbv2.load_balancer_dns_name")
def fix_load_balancer_dns_name() -> None:
    """Name each load balancer as ELB does, ``[internal-]<name>-<10 digits>.<region>.elb...``,
    the digits its own (from its ARN, which moto makes random): on a host running two regions,
    the two `/etc/hosts` blocks must never claim one name for two balancers. Set when the model
    is made, so every hook on CreateLoadBalancer sees the final name."""
    from moto.elbv2.models import FakeLoadBalancer

    original_init = FakeLoadBalancer.__init__

    def __init__(self: FakeLoadBalancer, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        region = self.arn.split(":")[3]
        self.dns_name = load_balancer_dns_name(self.name, self.arn, self.scheme, region)

    FakeLoadBalancer.__init__ = __init__  # type: ignore[method-assign]


def load_balancer_dns_name(name: str, arn: str, scheme: str | None, region: str) -> str:
    digits = int(hashlib.sha256(arn.encode()).hexdigest(), 16) % 10**10
    prefix = "internal-" if scheme == "internal" else ""
    return f"{prefix}{name}-{digits:010d}.{region}.elb.amazonaws.com"


# What a created resource remembers of the call that made it, to tell a repeat from a clash.
_CREATE_SETTINGS = "webfleet_create_settings"


@moto_patch("elbv2.idempotent_creates")
def fix_idempotent_creates() -> None:
    """Make CreateLoadBalancer, CreateTargetGroup and CreateListener idempotent, as ELB's are:
    the same name (a listener: the same balancer and port) with the same settings answers with
    what exists; with other settings, the Duplicate* error.

    A create the API daemon's kill cut off is retried by the client's SDK once `local.up` has
    brought the daemon back: moto made a second load balancer of the same name (its duplicate
    check compares random ARNs), a second listener on the port (it compares the port with
    listener ARNs), and refused the target group that AWS would have returned.
    """
    from moto.elbv2.exceptions import (
        DuplicateListenerError,
        DuplicateLoadBalancerName,
        DuplicateTargetGroupName,
    )
    from moto.elbv2.models import ELBv2Backend

    def named(collection: str) -> Callable[[ELBv2Backend, dict[str, Any]], Any]:
        def by_name(backend: ELBv2Backend, kwargs: dict[str, Any]) -> Any:
            found = getattr(backend, collection).values()
            return next((item for item in found if item.name == kwargs["name"]), None)

        return by_name

    def listener_on_port(backend: ELBv2Backend, kwargs: dict[str, Any]) -> Any:
        balancer = backend.load_balancers.get(kwargs["load_balancer_arn"])
        listeners = balancer.listeners.values() if balancer is not None else ()
        return next((li for li in listeners if str(li.port) == str(kwargs["port"])), None)

    for method, existing, duplicate in (
        ("create_load_balancer", named("load_balancers"), DuplicateLoadBalancerName),
        ("create_target_group", named("target_groups"), DuplicateTargetGroupName),
        ("create_listener", listener_on_port, DuplicateListenerError),
    ):
        original = getattr(ELBv2Backend, method)
        setattr(ELBv2Backend, method, _idempotent(original, existing, duplicate))


def _idempotent(
    create: Callable[..., Any],
    existing: Callable[[Any, dict[str, Any]], Any],
    duplicate: Callable[[], Exception],
) -> Callable[..., Any]:
    """``create``, answering a call that repeats the one that made an existing resource with
    that resource. moto's handlers pass everything by keyword (a target group's name aside)."""

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args:
            kwargs = {"name": args[0], **kwargs}
        # Tags are not settings: AWS does not compare them.
        settings = repr(sorted((k, v) for k, v in kwargs.items() if k != "tags"))
        found = existing(self, kwargs)
        if found is not None:
            if getattr(found, _CREATE_SETTINGS, None) == settings:
                return found
            raise duplicate()
        created = create(self, **kwargs)
        setattr(created, _CREATE_SETTINGS, settings)
        return created

    return call


@moto_patch("elbv2.deletion_protection")
def fix_deletion_protection() -> None:
    """Refuse to delete a load balancer whose ``deletion_protection.enabled`` is true, with ELB's
    OperationNotPermitted (moto deletes it): what makes `destroy` turn the protection off first.
    """
    from moto.elbv2.exceptions import ELBClientError
    from moto.elbv2.models import ELBv2Backend

    original_delete = ELBv2Backend.delete_load_balancer

    def delete_load_balancer(self: ELBv2Backend, arn: str) -> None:
        balancer = self.load_balancers.get(arn)
        if balancer is not None and balancer.attrs.get("deletion_protection.enabled") == "true":
            raise ELBClientError(
                "OperationNotPermitted",
                f"Load balancer '{arn}' cannot be deleted because deletion protection is enabled",
            )
        original_delete(self, arn)

    ELBv2Backend.delete_load_balancer = delete_load_balancer  # type: ignore[method-assign]
