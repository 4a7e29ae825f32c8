"""Hooks on moto's EC2 models that hand instance and image work to the machines component.

Patched on the backend classes, so API calls and moto's own callers (Auto Scaling launching and
terminating group members) go through them alike. Installed once per process (the patch
``ec2.machine_hooks``: on the first install, or by the API app); they pass through to moto
untouched while no component is active.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.core.types import Base64EncodedString
from moto.core.utils import utcnow
from moto.ec2.exceptions import InvalidAMIIdError
from moto.ec2.models import EC2Backend
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ec2.models.instances import MetadataOptions
from moto.ec2.responses.general import General

from webfleet.localregion.api.hooks import HookSlot
from webfleet.localregion.api.patches import moto_patch
from webfleet.localregion.ec2.instances import LaunchRequest, machine_spec

if TYPE_CHECKING:
    from webfleet.localregion.ec2.instances import InstanceMachines

# GetConsoleOutput returns the most recent 64 KB, as on EC2.
CONSOLE_OUTPUT_BYTES = 64 * 1024


@moto_patch("ec2.machine_hooks")
def machine_hooks() -> None:
    _hook_run_instances()
    _hook_instance_states()
    _hook_terminate()
    _hook_images()
    _hook_metadata_options()
    _hook_console_output()
    _hook_vpcs()
    _no_public_addresses()


_slot: HookSlot[InstanceMachines] = HookSlot(machine_hooks)
install = _slot.install
uninstall = _slot.uninstall


# --- RunInstances ---------------------------------------------------------------------------------


def _hook_run_instances() -> None:
    original = EC2Backend.run_instances

    def run_instances(
        self: EC2Backend,
        image_id: str,
        count: int,
        user_data: Any,
        security_group_names: list[str],
        **kwargs: Any,
    ) -> Any:
        machines = _slot.active
        if machines is None:
            return original(self, image_id, count, user_data, security_group_names, **kwargs)
        template = _launch_template_data(self, kwargs)
        resolved_image = image_id or template.get("ImageId")
        if not resolved_image or not machines.layers.knows(resolved_image):
            # Before any record exists: nothing to boot it from, so nothing is launched.
            raise InvalidAMIIdError(resolved_image or "")
        _default_subnet(self, kwargs, template)
        reservation = original(self, image_id, count, user_data, security_group_names, **kwargs)
        template_options = template.get("MetadataOptions")
        for instance in reservation.instances:
            if template_options and not kwargs.get("metadata_options"):
                instance.metadata_options = MetadataOptions(template_options)
            machines.launch(LaunchRequest(instance_spec(self, machines, instance), instance))
        return reservation

    EC2Backend.run_instances = run_instances  # type: ignore[method-assign,assignment]


def _launch_template_data(backend: EC2Backend, kwargs: dict[str, Any]) -> dict[str, Any]:
    if not kwargs.get("launch_template"):
        return {}
    data: dict[str, Any] = backend._get_template_from_args(kwargs["launch_template"]).data
    return data


def _default_subnet(backend: EC2Backend, kwargs: dict[str, Any], template: dict[str, Any]) -> None:
    """No subnet asked for: the default VPC's default subnet (in the requested AZ), as EC2 does.

    moto would invent an address outside any subnet, which no machine can hold.
    """
    interfaces = list(kwargs.get("nics") or []) + list(template.get("NetworkInterfaces") or [])
    if kwargs.get("subnet_id") or any(
        nic.get("SubnetId") or nic.get("NetworkInterfaceId") for nic in interfaces
    ):
        return
    defaults = backend.get_default_subnets()
    zone = kwargs.get("placement")
    subnet = defaults.get(zone) if zone else None
    if subnet is None and defaults:
        subnet = defaults[sorted(defaults)[0]]
    if subnet is not None:
        kwargs["subnet_id"] = subnet.id


def instance_spec(backend: EC2Backend, machines: InstanceMachines, instance: Any) -> Any:
    """The machine for one instance record of backend."""
    subnet = backend.get_subnet(instance.subnet_id)
    vpc_subnets = backend.describe_subnets(filters={"vpc-id": [subnet.vpc_id]})
    key_pair = backend.key_pairs.get(instance.key_name) if instance.key_name else None
    ssh_key = None
    if key_pair is not None:
        ssh_key = (key_pair.key_name, key_pair.public_key.strip())
    return machine_spec(
        instance,
        layers=machines.layers.layers_of(instance.image_id),
        subnet_cidrs=tuple(s.cidr_block for s in vpc_subnets),
        subnet_cidr=subnet.cidr_block,
        vpc_id=subnet.vpc_id,
        region=backend.region_name,
        ssh_key=ssh_key,
    )


# --- Stop / Start / Terminate ---------------------------------------------------------------------


def _hook_instance_states() -> None:
    transitions = {
        "stop_instances": "stop_instance",
        "start_instances": "start_instance",
    }
    original_reboot = EC2Backend.reboot_instances

    def reboot_instances(self: EC2Backend, instance_ids: list[str]) -> Any:
        rebooted = original_reboot(self, instance_ids)
        machines = _slot.active
        if machines is not None:
            for instance in rebooted:
                machines.reboot_instance(instance)
        return rebooted

    EC2Backend.reboot_instances = reboot_instances  # type: ignore[method-assign,assignment]
    for method, action in transitions.items():
        original = getattr(EC2Backend, method)

        def hooked(
            self: EC2Backend,
            instance_ids: list[str],
            _original: Any = original,
            _action: str = action,
        ) -> Any:
            changed = _original(self, instance_ids)
            machines = _slot.active
            if machines is not None:
                for instance, _previous in changed:
                    getattr(machines, _action)(instance)
            return changed

        setattr(EC2Backend, method, hooked)


def _hook_terminate() -> None:
    original = EC2Backend.terminate_instances

    def terminate_instances(self: EC2Backend, instance_ids: list[str]) -> Any:
        changed = original(self, instance_ids)
        machines = _slot.active
        if machines is not None:
            for instance, _previous in changed:
                release = _hold_address(self, instance)
                if not machines.terminate_instance(instance, release):
                    release()
        return changed

    EC2Backend.terminate_instances = terminate_instances  # type: ignore[method-assign,assignment]


def _hold_address(backend: EC2Backend, instance: Any) -> Callable[[], None]:
    """Keep a terminating instance's address from the next launch until its machine is gone.

    moto frees it at once; an Auto Scaling replacement would then get it while the old machine
    still holds it on the bridge (and in the metadata service).
    """
    subnet = backend.get_subnet(instance.subnet_id)
    address = instance.private_ip
    if not address or address in subnet._subnet_ips:
        return lambda: None
    subnet.request_ip(address, instance)
    return address_release(instance)


def address_release(instance: Any) -> Callable[[], None]:
    """What frees a terminating instance's held address (also after a daemon restart)."""
    subnet = instance.ec2_backend.get_subnet(instance.subnet_id)
    address = instance.private_ip
    return lambda: subnet.del_subnet_ip(address)  # moto ignores an address it does not hold


# --- CreateImage / CopyImage / DeregisterImage -------------------------------------------------


def _hook_images() -> None:
    original_create = EC2Backend.create_image
    original_deregister = EC2Backend.deregister_image

    def create_image(
        self: EC2Backend,
        instance_id: str,
        name: str,
        description: str,
        tag_specifications: list[dict[str, Any]],
    ) -> Any:
        image = original_create(self, instance_id, name, description, tag_specifications)
        machines = _slot.active
        if machines is not None:
            machines.create_image(instance_id, image)
        return image

    def copy_image(self: EC2Backend, source_image_id: str, *args: Any, **kwargs: Any) -> Any:
        # Looked up per call: the API fix for CopyImage (api_fixes.py) replaces AmiBackend's.
        image = AmiBackend.copy_image(self, source_image_id, *args, **kwargs)
        machines = _slot.active
        if machines is not None:
            machines.copy_image(source_image_id, image.id)
        return image

    def deregister_image(self: EC2Backend, ami_id: str) -> None:
        original_deregister(self, ami_id)
        machines = _slot.active
        if machines is not None:
            machines.deregister_image(ami_id)

    EC2Backend.create_image = create_image  # type: ignore[method-assign,assignment]
    EC2Backend.deregister_image = deregister_image  # type: ignore[method-assign,assignment]
    EC2Backend.copy_image = copy_image  # type: ignore[method-assign,assignment]


# --- ModifyInstanceMetadataOptions ----------------------------------------------------------------


def _hook_metadata_options() -> None:
    original = EC2Backend.modify_instance_metadata_options

    def modify_instance_metadata_options(
        self: EC2Backend, instance_id: str, *args: Any, **kwargs: Any
    ) -> Any:
        options = original(self, instance_id, *args, **kwargs)
        machines = _slot.active
        if machines is not None:
            # moto stores None for what the request left out; EC2 keeps the current value.
            instance = self.get_instance(instance_id)
            if options.http_tokens is None:
                options.http_tokens = "optional"
            instance.metadata_options = options
            machines.set_http_tokens(instance_id, options.http_tokens)
        return options

    EC2Backend.modify_instance_metadata_options = modify_instance_metadata_options  # type: ignore[method-assign,assignment]


# --- GetConsoleOutput -----------------------------------------------------------------------------


def _hook_console_output() -> None:
    original = General.get_console_output

    def get_console_output(self: General) -> ActionResult:
        machines = _slot.active
        instance_id = self._get_param("InstanceId")
        output = None if machines is None else machines.console_output(instance_id)
        if output is None:
            return original(self)
        instance = self.ec2_backend.get_instance(instance_id)
        tail = output.encode()[-CONSOLE_OUTPUT_BYTES:].decode(errors="replace")
        return ActionResult(
            {
                "InstanceId": instance.id,
                "Timestamp": utcnow(),
                "Output": Base64EncodedString.from_raw_string(tail),
            }
        )

    General.get_console_output = get_console_output  # type: ignore[method-assign]


# --- VPCs: the region's default VPC CIDR; keep their addresses on this host ----------------------


def _hook_vpcs() -> None:
    original_create = EC2Backend.create_vpc
    original_delete = EC2Backend.delete_vpc

    def create_vpc(self: EC2Backend, cidr_block: str, *args: Any, **kwargs: Any) -> Any:
        machines = _slot.active
        if machines is not None and kwargs.get("is_default"):
            # moto makes each backend's default VPC (and its /20 per zone) from this CIDR.
            cidr_block = machines.default_vpc_cidr
        vpc = original_create(self, cidr_block, *args, **kwargs)
        if machines is not None:
            machines.guards.guard(vpc.id, vpc.cidr_block)
        return vpc

    def delete_vpc(self: EC2Backend, vpc_id: str) -> Any:
        vpc = original_delete(self, vpc_id)
        machines = _slot.active
        if machines is not None:
            machines.guards.unguard(vpc_id)
        return vpc

    EC2Backend.create_vpc = create_vpc  # type: ignore[method-assign,assignment]
    EC2Backend.delete_vpc = delete_vpc  # type: ignore[method-assign,assignment]


def _no_public_addresses() -> None:
    """No internet gateway reaches the local region: instances get private addresses only.

    A made-up public address would send SSH (Packer's default interface) out of the host.
    """
    original = NetworkInterface.check_auto_public_ip

    def check_auto_public_ip(self: NetworkInterface) -> None:
        if _slot.active is None:
            original(self)

    NetworkInterface.check_auto_public_ip = check_auto_public_ip  # type: ignore[method-assign]
