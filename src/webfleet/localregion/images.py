"""The region's AMI catalogue: the base images it offers, written where moto loads them from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

DEBIAN_OWNER_ID = "136693071363"


@dataclass(frozen=True)
class BaseImage:
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


DEBIAN_12_AMD64 = BaseImage(
    name="debian-12-amd64-20250520-2118",
    description="Debian 12 (20250520-2118)",
    owner_id=DEBIAN_OWNER_ID,
    architecture="x86_64",
)

BASE_IMAGES: tuple[BaseImage, ...] = (DEBIAN_12_AMD64,)


def write_ami_catalogue(path: Path, images: tuple[BaseImage, ...] = BASE_IMAGES) -> Path:
    """Write the catalogue moto loads at import time; returns the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [image.catalogue_record() for image in images]
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path
