"""The region's AMI catalogue: the base images it offers, written where moto loads them from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from webfleet.localregion.images.baseimage import BaseImage

DEBIAN_OWNER_ID = "136693071363"
# Debian architecture names -> EC2's.
_AMI_ARCHITECTURES = {"amd64": "x86_64", "arm64": "arm64"}


@dataclass(frozen=True)
class CatalogueImage:
    """A public base image, registered under the name and owner of its official AMI."""

    name: str
    description: str
    owner_id: str
    architecture: str

    @property
    def ami_id(self) -> str:
        # Derived from the name so the id is stable across restarts and changes with the image.
        digest = hashlib.sha256(self.name.encode()).hexdigest()
        return f"ami-0deb{digest[:13]}"

    def catalogue_record(self) -> dict[str, object]:
        """The record in the format of moto's amis.json (MOTO_AMIS_PATH)."""
        # No creation_date: moto 5.2.1 parses it in place, so the second region or account
        # that loads the catalogue fails on an already-parsed datetime.
        return {
            "ami_id": self.ami_id,
            "name": self.name,
            "description": self.description,
            "owner_id": self.owner_id,
            "public": True,
            "state": "available",
            "image_type": "machine",
            "image_location": f"{self.owner_id}/{self.name}",
            "architecture": self.architecture,
            "virtualization_type": "hvm",
            "hypervisor": "xen",
            "root_device_type": "ebs",
            "root_device_name": "/dev/xvda",
            "sriov": "simple",
            "boot_mode": "uefi-preferred",
        }


def debian_image(built: BaseImage) -> CatalogueImage:
    """The catalogue entry of a built Debian base image: named like Debian's own AMIs
    (debian-12-amd64-YYYYMMDD-NNNN), so `debian-12-amd64-*` owned by 136693071363 finds it
    here as it does on AWS."""
    _, release, architecture, date, serial = built.name.split("-")
    return CatalogueImage(
        name=built.name,
        description=f"Debian {release} ({date}-{serial})",
        owner_id=DEBIAN_OWNER_ID,
        architecture=_AMI_ARCHITECTURES.get(architecture, architecture),
    )


def write_ami_catalogue(path: Path, images: Sequence[CatalogueImage]) -> Path:
    """Write the catalogue moto loads at import time; returns the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [image.catalogue_record() for image in images]
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path
