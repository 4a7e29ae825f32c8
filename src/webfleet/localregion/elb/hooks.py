"""Where the load balancer runtime meets moto: reading ELBv2/EC2/ACM records, and target health.

DescribeTargetHealth answers from HAProxy (through the active runtime) for every target a
running balancer serves; changes to balancers, listeners, rules and targets wake the
reconciler at once. Installed once per process (the patch ``elbv2.load_balancer_hooks``: on the
first install, or by the API app); moto answers as its own while no runtime is active.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from moto.acm.models import acm_backends
from moto.ec2.models import ec2_backends
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup, elbv2_backends

from webfleet.localregion.api.hooks import HookSlot
from webfleet.localregion.api.patches import moto_patch
from webfleet.localregion.elb.haproxy_config import Target
from webfleet.localregion.elb.snapshot import BalancerRecord, balancer_record

if TYPE_CHECKING:
    from webfleet.localregion.elb.load_balancers import LoadBalancerRuntime

log = logging.getLogger(__name__)

# The ELBv2 calls after which HAProxy's configuration may differ.
CHANGING_CALLS = (
    "create_load_balancer",
    "delete_load_balancer",
    "create_listener",
    "modify_listener",
    "delete_listener",
    "create_rule",
    "modify_rule",
    "delete_rule",
    "set_rule_priorities",
    "create_target_group",
    "modify_target_group",
    "modify_target_group_attributes",
    "modify_load_balancer_attributes",  # access logs on or off
    "delete_target_group",
    "register_targets",
    "deregister_targets",
)


@moto_patch("elbv2.load_balancer_hooks")
def load_balancer_hooks() -> None:
    for name in CHANGING_CALLS:
        original = getattr(ELBv2Backend, name, None)
        if original is not None:
            setattr(ELBv2Backend, name, _waking(original))
    _hook_target_health()


_slot: HookSlot[LoadBalancerRuntime] = HookSlot(load_balancer_hooks)
install = _slot.install
uninstall = _slot.uninstall


def _waking(original: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: ELBv2Backend, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        runtime = _slot.active
        if runtime is not None:
            runtime.changed()
        return result

    return call


def _hook_target_health() -> None:
    original = FakeTargetGroup.health_for

    def health_for(self: FakeTargetGroup, target: dict[str, Any], ec2_backend: Any) -> Any:
        runtime = _slot.active
        if runtime is None:
            return original(self, target, ec2_backend)
        health = runtime.target_health(
            self.arn, target["Id"], attached=bool(getattr(self, "load_balancer_arns", []))
        )
        registered = self.targets.get(target["Id"])
        if registered is None and health.state != "draining":
            return original(self, target, ec2_backend)  # not registered: moto says so
        return FakeHealthStatus(
            target["Id"],
            (registered or target).get("Port", self.port),
            self.health_check_port,
            health.state,
            health.reason,
            health.description,
        )

    FakeTargetGroup.health_for = health_for  # type: ignore[method-assign]


# --- reading moto's records -----------------------------------------------------------------------


def balancer_records(
    address_of: Callable[[str], str | None],
    certificate_file: Callable[[str], str | None],
    draining: Callable[[str], Iterable[Target]],
) -> list[BalancerRecord]:
    """Every application load balancer of every account and region, as HAProxy should run it."""
    records: list[BalancerRecord] = []
    backend: Any
    for account_id, region, backend in list(elbv2_backends.iter_backends()):
        target_groups = dict(list(backend.target_groups.items()))
        for balancer in list(backend.load_balancers.values()):
            if getattr(balancer, "type", "application") != "application":
                continue
            try:
                records.append(
                    balancer_record(
                        balancer,
                        target_groups,
                        address_of,
                        certificate_file,
                        draining,
                        account_id=account_id,
                        region=region,
                    )
                )
            except (KeyError, ValueError, TypeError, AttributeError) as error:
                log.error("cannot read load balancer %s: %s", balancer.name, error)
    return records


def instance_address(instance_id: str) -> str | None:
    """The private IP of a live instance, in whichever account and region it is."""
    backend: Any
    for _account, _region, backend in list(ec2_backends.iter_backends()):
        instance = backend.get_instance_by_id(instance_id) if instance_id.startswith("i-") else None
        if instance is not None:
            if instance.state in ("terminated", "shutting-down"):
                return None
            address: str | None = instance.private_ip
            return address
    return None


def put_log_object(account_id: str, bucket: str, key: str, body: bytes) -> None:
    """Write a log object into a bucket of the account, as a delivery service does (no API
    call: the bucket's policy admits the delivery services)."""
    from moto.s3.models import s3_backends

    s3_backends[account_id]["aws"].put_object(bucket, key, body)


def certificate_pem(certificate_arn: str) -> str | None:
    """The imported certificate and its key, as one PEM for HAProxy's `crt`."""
    backend: Any
    for _account, _region, backend in list(acm_backends.iter_backends()):
        bundle = backend._certificates.get(certificate_arn)
        if bundle is not None:
            return str(bundle.cert.decode().strip() + "\n" + bundle.key.decode().strip() + "\n")
    return None
