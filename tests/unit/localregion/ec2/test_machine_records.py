"""Machine records on disk: what is saved loads back the same; half-made machines are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from webfleet.localregion.ec2.machine_records import (
    MachineRecord,
    MachineRecords,
    MachineSpec,
    MachineState,
)
from webfleet.localregion.errors import LocalRegionError

SPEC = MachineSpec(
    instance_id="i-0123456789abcdef0",
    layers=(Path("/layers/app"), Path("/layers/base")),
    private_ip="10.0.1.5",
    prefixlen=24,
    vpc_id="vpc-1",
    subnet_cidrs=("10.0.1.0/24", "10.0.2.0/24"),
    availability_zone="us-east-1a",
    region="us-east-1",
    ami_id="ami-1",
    user_data=b"#!/bin/sh\n\xff",
    ssh_key=("deploy", "ssh-ed25519 AAAA"),
    http_tokens="required",
)


def test_a_saved_record_loads_back_the_same(tmp_path: Path) -> None:
    records = MachineRecords(tmp_path)
    record = MachineRecord(SPEC, MachineState.PENDING, pid=1234, started_at=1.5)
    records.directory(SPEC.instance_id).mkdir()
    records.save(record)
    assert records.exists(SPEC.instance_id)
    assert records.load(SPEC.instance_id) == record
    assert records.all() == [record]
    assert SPEC.hostname == "ip-10-0-1-5" and SPEC.subnet_cidr == "10.0.1.0/24"


def test_directories_without_a_record_are_the_unrecorded_ones(tmp_path: Path) -> None:
    records = MachineRecords(tmp_path)
    records.directory(SPEC.instance_id).mkdir()
    records.save(MachineRecord(SPEC))
    (tmp_path / "i-half-made").mkdir()
    (tmp_path / "i-unreadable").mkdir()
    (tmp_path / "i-unreadable" / "machine.json").write_text("{", encoding="utf-8")
    assert [r.spec.instance_id for r in records.all()] == [SPEC.instance_id]
    assert records.unrecorded_ids([SPEC.instance_id]) == ["i-half-made", "i-unreadable"]
    assert MachineRecords(tmp_path / "none").all() == []


@pytest.mark.parametrize("instance_id", ["", "../etc", "a/b", ".hidden"])
def test_an_id_that_could_leave_the_directory_is_refused(tmp_path: Path, instance_id: str) -> None:
    with pytest.raises(LocalRegionError, match="not an instance id"):
        MachineRecords(tmp_path).directory(instance_id)


def test_a_missing_record_is_no_machine(tmp_path: Path) -> None:
    with pytest.raises(LocalRegionError, match="no machine i-gone"):
        MachineRecords(tmp_path).load("i-gone")
