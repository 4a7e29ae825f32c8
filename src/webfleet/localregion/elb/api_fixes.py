"""Fixes to moto's ELBv2 API where its answers differ from AWS's in ways the region notices.

Each is a patch in the registry (api/patches.py), applied by the API app:

- ``fix_load_balancer_default_scheme``: a load balancer created without Scheme (Terraform sends
  it only for internal ones) has no scheme at all, instead of AWS's default internet-facing.
- ``fix_register_pending_targets``: a pending instance cannot be registered as a target, so an
  Auto Scaling group whose machines are still booting fails to create (InvalidTarget).
- ``fix_load_balancer_dns_name``: every load balancer named N is ``N-1.<region>.elb...``, so
  two regions (or a re-created balancer) hand out the same name for different balancers.
"""

from __future__ import annotations

import hashlib
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
