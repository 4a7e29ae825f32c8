"""The AMI catalogue: the Debian base image as moto loads it, under a stable id."""

from __future__ import annotations

import json
import re
from pathlib import Path

from webfleet.localregion.images import DEBIAN_12_AMD64, BaseImage, write_ami_catalogue


def test_debian_base_image_has_a_stable_well_formed_ami_id() -> None:
    assert re.fullmatch(r"ami-0deb[0-9a-f]{13}", DEBIAN_12_AMD64.ami_id)
    same = BaseImage(
        DEBIAN_12_AMD64.name,
        DEBIAN_12_AMD64.description,
        DEBIAN_12_AMD64.owner_id,
        DEBIAN_12_AMD64.architecture,
    )
    assert same.ami_id == DEBIAN_12_AMD64.ami_id


def test_another_image_gets_another_id() -> None:
    newer = BaseImage("debian-12-amd64-20250610-2140", "Debian 12", "136693071363", "x86_64")
    assert newer.ami_id != DEBIAN_12_AMD64.ami_id


def test_catalogue_holds_the_debian_record_in_moto_format(tmp_path: Path) -> None:
    path = write_ami_catalogue(tmp_path / "nested" / "amis.json")
    records = json.loads(path.read_text(encoding="utf-8"))
    assert records == [DEBIAN_12_AMD64.catalogue_record()]
    record = records[0]
    assert record["owner_id"] == "136693071363"
    assert record["name"].startswith("debian-12-amd64-")
    assert record["description"] == "Debian 12 (20250520-2118)"
    assert (record["architecture"], record["virtualization_type"]) == ("x86_64", "hvm")
    assert (record["root_device_type"], record["root_device_name"]) == ("ebs", "/dev/xvda")
    assert record["public"] is True
    # moto 5.2.1 breaks on a second backend when the catalogue carries a creation_date.
    assert "creation_date" not in record
    assert list(path.parent.iterdir()) == [path]
