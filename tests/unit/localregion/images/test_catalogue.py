"""The AMI catalogue: the built Debian base image as moto loads it, under a stable id."""

from __future__ import annotations

import json
import re
from pathlib import Path

from webfleet.localregion.images.baseimage import BaseImage
from webfleet.localregion.images.catalogue import debian_image, write_ami_catalogue


def built_image(name: str) -> BaseImage:
    return BaseImage(
        key="0" * 64,
        name=name,
        directory=Path("/nonexistent"),
        built_at=0.0,
        build_seconds=1.0,
        size_bytes=1,
        package_versions={},
    )


DEBIAN = debian_image(built_image("debian-12-amd64-20261122-6778"))


def test_debian_base_image_has_a_stable_well_formed_ami_id() -> None:
    assert re.fullmatch(r"ami-0deb[0-9a-f]{13}", DEBIAN.ami_id)
    assert debian_image(built_image(DEBIAN.name)).ami_id == DEBIAN.ami_id


def test_another_image_gets_another_id() -> None:
    newer = debian_image(built_image("debian-12-amd64-20261201-0042"))
    assert newer.ami_id != DEBIAN.ami_id


def test_catalogue_holds_the_debian_record_in_moto_format(tmp_path: Path) -> None:
    path = write_ami_catalogue(tmp_path / "nested" / "amis.json", [DEBIAN])
    records = json.loads(path.read_text(encoding="utf-8"))
    assert records == [DEBIAN.catalogue_record()]
    record = records[0]
    assert record["owner_id"] == "136693071363"
    assert record["name"] == "debian-12-amd64-20261122-6778"
    assert record["description"] == "Debian 12 (20261122-6778)"
    assert (record["architecture"], record["virtualization_type"]) == ("x86_64", "hvm")
    assert (record["root_device_type"], record["root_device_name"]) == ("ebs", "/dev/xvda")
    assert record["public"] is True
    # moto 5.2.1 breaks on a second backend when the catalogue carries a creation_date.
    assert "creation_date" not in record
    assert list(path.parent.iterdir()) == [path]
