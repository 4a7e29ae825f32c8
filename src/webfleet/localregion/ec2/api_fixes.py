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
"""

from __future__ import annotations

import datetime as dt
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
