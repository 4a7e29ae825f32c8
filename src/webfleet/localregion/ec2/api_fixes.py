"""Fixes to moto's EC2 API where its answers differ from AWS's in ways Terraform notices.

Each fix is small and corrects the API itself, so the Terraform configuration stays the same for
AWS and for the local region (no ignore_changes, no local-only branches). Each is a patch in the
registry (api/patches.py), applied by the API app:

- ``fix_ami_creation_date``: AMIs from MOTO_AMIS_PATH with a ``creation_date`` crash every EC2
  backend after the first one.
- ``fix_launch_template_tags``: the template's own tags (TagSpecifications of resource type
  launch-template) are copied into the version's LaunchTemplateData, a perpetual diff on
  ``aws_launch_template`` whenever tags (or provider default_tags) are set; every plan then makes
  a new template version, and every apply starts an instance refresh.
- ``fix_launch_template_version_user_data``: CreateLaunchTemplateVersion stores UserData
  unparsed, so any launch from version 2+ (a scale-out, an instance refresh) crashes moto.
- ``fix_security_group_rule_description``: rules that reference a security group come back
  without their description, a perpetual diff on ``aws_vpc_security_group_*_rule``.
- ``fix_root_device_mapping``: a block device mapping for the AMI's root device without a size
  or snapshot (how a launch template asks for an encrypted root volume) fails RunInstances with
  MissingParameter, and one with them is a second volume beside the default root volume.
- ``fix_copy_image``: CopyImage ignores ``Encrypted`` and ``KmsKeyId`` (Packer's
  ``encrypt_boot`` gets an unencrypted copy), and the copy has moto's default root device
  (``/dev/sda1``, ``standard``) rather than the source's; DescribeImages never says whether an
  AMI's snapshot is encrypted.
- ``fix_flow_log_s3_prefix``: an S3 destination with a key prefix (``arn:aws:s3:::bucket/
  prefix/``, as AWS documents it) is refused: moto looks up ``bucket/prefix/`` as a bucket.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from webfleet.localregion.api.patches import moto_patch

# --- AMIs from MOTO_AMIS_PATH -------------------------------------------------------------------


@moto_patch("ec2.ami_creation_date")
def fix_ami_creation_date() -> None:
    """Let every region's EC2 backend load AMIs that have a ``creation_date``.

    moto parses ``creation_date`` in place in the shared AMI list when the first EC2 backend is
    built; the next backend (another region, or us-east-1 built for a global service) then tries
    to parse the resulting datetime and the request fails with a 500.
    """
    from moto.core.parse import default_timestamp_parser
    from moto.ec2.models import amis

    def parse_timestamp(value: str | dt.datetime) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        return default_timestamp_parser(value)

    amis.parse_timestamp = parse_timestamp  # type: ignore[attr-defined]


# --- launch templates ---------------------------------------------------------------------------


@moto_patch("ec2.launch_template_tags")
def fix_launch_template_tags() -> None:
    """Keep CreateLaunchTemplate's own tags out of the template version's data.

    In AWS, the request's TagSpecifications (resource type ``launch-template``) tag the template
    itself; LaunchTemplateData.TagSpecifications are what instances and volumes get at launch.
    moto appends the former to the latter, so DescribeLaunchTemplateVersions returns a
    ``launch-template`` tag specification the configuration never had.
    """
    from moto.core.responses import ActionResult
    from moto.ec2.responses.launch_templates import LaunchTemplates

    original_create = LaunchTemplates.create_launch_template

    def create_launch_template(self: LaunchTemplates) -> ActionResult:
        # Read before moto's handler, which appends to the parsed parameters.
        requested = self._get_param("LaunchTemplateData", {}) or {}
        data_had_specs = "TagSpecifications" in requested
        result = original_create(self)
        template = self.ec2_backend.get_launch_template_by_name(
            self._get_param("LaunchTemplateName")
        )
        for version in template.versions:
            specs = [
                spec
                for spec in version.data.get("TagSpecifications", [])
                if spec.get("ResourceType") != "launch-template"
            ]
            if specs or data_had_specs:
                version.data["TagSpecifications"] = specs
            else:
                version.data.pop("TagSpecifications", None)
        return result

    LaunchTemplates.create_launch_template = create_launch_template  # type: ignore[method-assign]


@moto_patch("ec2.launch_template_version_user_data")
def fix_launch_template_version_user_data() -> None:
    """Store a new launch template version's UserData the way the first version's is stored.

    CreateLaunchTemplate decodes LaunchTemplateData.UserData into moto's Base64EncodedString;
    CreateLaunchTemplateVersion keeps the raw text, and moto asserts on it when an Auto Scaling
    group launches from that version, so a group fails to launch after its first user data change.
    """
    from moto.ec2.models.launch_templates import LaunchTemplate, LaunchTemplateVersion
    from moto.ec2.utils import parse_user_data

    original_create_version = LaunchTemplate.create_version

    def create_version(
        self: LaunchTemplate, data: dict[str, Any], description: str
    ) -> LaunchTemplateVersion:
        if isinstance(data.get("UserData"), str | bytes):
            data["UserData"] = parse_user_data(data["UserData"])
        return original_create_version(self, data, description)

    LaunchTemplate.create_version = create_version  # type: ignore[method-assign]


# --- security group rule descriptions ---------------------------------------------------------


@moto_patch("ec2.security_group_rule_description")
def fix_security_group_rule_description() -> None:
    """Report the description of a rule that references a security group.

    moto keeps such a rule's description in its source group entry but reads descriptions only
    from the CIDR entry, so DescribeSecurityGroupRules omits it.
    """
    from moto.ec2.models.security_groups import SecurityGroupRule

    def description(self: SecurityGroupRule) -> str | None:
        text: str | None = self.ip_range.get("Description") or self.source_group.get("Description")
        return text

    SecurityGroupRule.description = property(description)  # type: ignore[assignment,method-assign]


# --- Block device mappings ----------------------------------------------------------------------


@moto_patch("ec2.root_device_mapping")
def fix_root_device_mapping() -> None:
    """A mapping of the AMI's root device changes the root volume, as on EC2: its size and
    snapshot default to the AMI's, and it replaces the root volume moto attached by default
    (which would otherwise stay behind, attached to nothing, after the instance terminates)."""
    from moto.ec2.models.instances import Instance

    original_add = Instance.add_block_device

    def add_block_device(
        self: Instance,
        size: int | None,
        device_path: str,
        snapshot_id: str | None,
        encrypted: bool,
        delete_on_termination: bool,
        kms_key_id: str | None,
        volume_type: str | None,
    ) -> None:
        image = self.ec2_backend.amis.get(self.image_id)
        if device_path == self.root_device_name and image is not None:
            if size is None and snapshot_id is None:
                snapshot_id = image.ebs_snapshot.id
            replaced = self.block_device_mapping.get(device_path)
            if replaced is not None:
                self.ec2_backend.detach_volume(replaced.volume_id, self.id, device_path)
                self.ec2_backend.delete_volume(replaced.volume_id)
        original_add(
            self,
            size,  # type: ignore[arg-type]
            device_path,
            snapshot_id,
            encrypted,
            delete_on_termination,
            kms_key_id,
            volume_type,
        )

    Instance.add_block_device = add_block_device  # type: ignore[method-assign]


# --- CopyImage ------------------------------------------------------------------------------------


@moto_patch("ec2.copy_image")
def fix_copy_image() -> None:
    """Encrypt a copy that asks for it (with the given key, else the account's aws/ebs key, as
    EC2 does), keep the source's root device, and say in the block device mapping whether the
    snapshot is encrypted."""
    from moto.ec2.models.amis import Ami, AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    original_copy = AmiBackend.copy_image
    original_mappings: Callable[[Ami], list[dict[str, Any]]] = vars(Ami)[
        "block_device_mappings"
    ].fget

    def copy_image(
        self: AmiBackend,
        source_image_id: str,
        source_region: str,
        name: str | None = None,
        description: str | None = None,
        encrypted: bool = False,
        kms_key_id: str | None = None,
    ) -> Ami:
        image = original_copy(self, source_image_id, source_region, name, description)
        source = self.describe_images(ami_ids=[source_image_id])[0]
        for attribute in ("root_device_name", "root_device_type", "boot_mode", "sriov"):
            setattr(image, attribute, getattr(source, attribute))
        # A copy of an encrypted image stays encrypted, with the source's key unless one is given.
        if kms_key_id is None and not encrypted and source.ebs_snapshot.encrypted:
            kms_key_id = source.ebs_snapshot.kms_key_id
        if encrypted or kms_key_id:
            image.ebs_snapshot.encrypted = True
            image.ebs_snapshot.kms_key_id = kms_key_id or (
                self.default_kms_key_id  # type: ignore[attr-defined]
                or self._create_default_encryption_key()  # type: ignore[attr-defined]
            )
        return image

    def block_device_mappings(self: Ami) -> list[dict[str, Any]]:
        mappings: list[dict[str, Any]] = original_mappings(self)
        for mapping in mappings:
            mapping["Ebs"]["Encrypted"] = bool(self.ebs_snapshot.encrypted)
        return mappings

    def copy_image_response(self: AmisResponse) -> Any:
        self.error_on_dryrun()
        image = self.ec2_backend.copy_image(
            self._get_param("SourceImageId"),
            self._get_param("SourceRegion"),
            self._get_param("Name"),
            self._get_param("Description"),
            encrypted=self._get_bool_param("Encrypted", False),
            kms_key_id=self._get_param("KmsKeyId"),
        )
        from moto.core.responses import ActionResult

        return ActionResult({"ImageId": image.id})

    AmiBackend.copy_image = copy_image  # type: ignore[method-assign]
    Ami.block_device_mappings = property(block_device_mappings)  # type: ignore[method-assign,assignment]
    AmisResponse.copy_image = copy_image_response  # type: ignore[method-assign]


# --- Flow logs ------------------------------------------------------------------------------------


@moto_patch("ec2.flow_log_s3_prefix")
def fix_flow_log_s3_prefix() -> None:
    """Check the bucket of an S3 destination ARN, not the bucket and its prefix; the flow log
    keeps the destination as given."""
    from moto.ec2.models.flow_logs import FlowLogsBackend

    original = FlowLogsBackend.create_flow_logs

    def create_flow_logs(self: FlowLogsBackend, **kwargs: Any) -> Any:
        destination = kwargs.get("log_destination") or ""
        bucket_arn, slash, _prefix = destination.partition("/")
        if kwargs.get("log_destination_type") != "s3" or not slash:
            return original(self, **kwargs)
        created, unsuccessful = original(self, **{**kwargs, "log_destination": bucket_arn})
        for flow_log in created:
            flow_log.log_destination = destination
        return created, unsuccessful

    FlowLogsBackend.create_flow_logs = create_flow_logs  # type: ignore[method-assign,assignment]
