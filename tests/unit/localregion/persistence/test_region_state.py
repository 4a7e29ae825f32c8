"""The region's state file: moto's records (and the components' own) saved by one daemon and
loaded by the next, against the in-process API app (no machines: moto keeps the records)."""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import time
import urllib.request
from pathlib import Path

import pytest

from tests.unit.localregion.served_api import client, create_group
from webfleet.localregion.api.app import create_api_app
from webfleet.localregion.api.server import served_in_thread
from webfleet.localregion.autoscaling.instance_refresh import InstanceRefresh
from webfleet.localregion.persistence import moto_state
from webfleet.localregion.persistence.region_state import (
    SavedRegion,
    restored_by_running_daemon,
    state_file,
)

POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


class Counter:
    """A component with state of its own: what it saved comes back through restore()."""

    name = "counter"

    def __init__(self, value: int) -> None:
        self.value = value
        self.restored: object = None

    def snapshot(self) -> object:
        return {"value": self.value}

    def restore(self, state: object) -> None:
        self.restored = state


@pytest.fixture
def managed_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """IAM backends made from here on hold AWS's managed policies, as the daemon's do."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


def reset(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_records_saved_by_one_daemon_answer_the_same_after_loading(
    endpoint: str, managed_policies: None, fresh_region: None, tmp_path: Path
) -> None:
    ec2, iam, autoscaling = (client(endpoint, s) for s in ("ec2", "iam", "autoscaling"))
    vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    iam.create_role(RoleName="web", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="web", PolicyArn=POLICY)
    create_group(endpoint, capacity=2)
    members = sorted(
        i["InstanceId"]
        for i in autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
    )
    saved = SavedRegion(tmp_path, [Counter(7)])
    saved.save()

    reset(endpoint)  # what a killed daemon's successor starts from
    assert not autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    saved_at = state_file(tmp_path).stat().st_mtime
    started_at = time.time()
    restored = Counter(0)
    SavedRegion(tmp_path, [restored]).load()

    assert restored.restored == {"value": 7}
    # `local.status` says this daemon started from a killed one's records, and when they were
    # saved; a daemon started later (from nothing) does not claim the restore.
    marker = restored_by_running_daemon(tmp_path, started_at)
    assert marker is not None and marker.saved_at == saved_at
    assert restored_by_running_daemon(tmp_path, time.time() + 1) is None
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]] == [vpc_id]
    after = sorted(
        i["InstanceId"]
        for i in autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
    )
    assert after == members
    running = ec2.describe_instances(InstanceIds=members)["Reservations"]
    assert {i["State"]["Name"] for r in running for i in r["Instances"]} == {"running"}
    attached = iam.list_attached_role_policies(RoleName="web")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [POLICY]
    # The API still works on what was loaded: the group scales.
    autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    assert len(autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]) == 3


def test_an_encrypted_volume_and_its_kms_key_survive_a_save(
    endpoint: str, fresh_region: None, tmp_path: Path
) -> None:
    # The first encrypted volume makes the default EBS key, whose key object cannot be
    # pickled: every save after it failed, and a killed daemon came back without what followed.
    ec2 = client(endpoint, "ec2")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, Encrypted=True)["VolumeId"]
    key_id = ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["KmsKeyId"]
    assert SavedRegion(tmp_path, []).save()

    reset(endpoint)
    SavedRegion(tmp_path, []).load()
    (loaded,) = ec2.describe_volumes(VolumeIds=[volume])["Volumes"]
    assert (loaded["Encrypted"], loaded["KmsKeyId"]) == (True, key_id)
    kms = client(endpoint, "kms")
    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"secret"


def test_aws_managed_policies_are_saved_by_reference(
    endpoint: str, managed_policies: None, fresh_region: None
) -> None:
    iam = client(endpoint, "iam")
    iam.create_role(RoleName="web", AssumeRolePolicyDocument=TRUST)
    backends = moto_state.moto_backends()
    by_reference = len(moto_state.dumps(backends))
    whole = len(pickle.dumps(backends, protocol=5))
    # Over a thousand AWS managed policies: most of the bytes, unless saved by ARN.
    assert by_reference * 5 < whole, (by_reference, whole)


def test_an_unchanged_region_is_not_written_again(
    endpoint: str, fresh_region: None, tmp_path: Path
) -> None:
    client(endpoint, "ec2").create_vpc(CidrBlock="10.8.0.0/16")
    saved = SavedRegion(tmp_path, [])
    saved.save()
    path = state_file(tmp_path)
    first = path.stat().st_mtime_ns
    path.touch()  # a rewrite would change it again
    touched = path.stat().st_mtime_ns
    saved.save()
    assert path.stat().st_mtime_ns == touched != 0 and first
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_state_file_that_does_not_load_is_set_aside_and_the_region_starts_empty(
    endpoint: str, fresh_region: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state_file(tmp_path).write_bytes(b"not a pickle")
    component = Counter(0)
    saved = SavedRegion(tmp_path, [component])
    with caplog.at_level(logging.ERROR):
        saved.load()
    assert not saved.restored and component.restored is None
    assert restored_by_running_daemon(tmp_path, 0.0) is None
    assert not state_file(tmp_path).exists()
    assert (tmp_path / "region-state.unreadable").read_bytes() == b"not a pickle"
    assert "does not load" in caplog.text


def test_a_clean_stop_removes_the_state_file(
    endpoint: str, fresh_region: None, tmp_path: Path
) -> None:
    saved = SavedRegion(tmp_path, [])
    saved.start_saving()
    assert state_file(tmp_path).exists()
    saved.stop_saving()
    assert not state_file(tmp_path).exists()


def served_with_durable_writes(state: SavedRegion) -> contextlib.AbstractContextManager[str]:
    """The API app as the daemon serves it: each write saved before it is answered."""
    return served_in_thread(create_api_app(state.save_answered_write))


def test_an_answered_write_is_on_disk_before_its_answer(
    endpoint: str, fresh_region: None, tmp_path: Path
) -> None:
    # No periodic save runs here: only the write itself can have saved it (a daemon killed
    # right after answering must not come back without what it answered).
    state = SavedRegion(tmp_path, [])
    with served_with_durable_writes(state) as durable:
        client(durable, "iam").list_roles()
        assert not state_file(tmp_path).exists()  # a read saves nothing
        vpc_id = client(durable, "ec2").create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
        assert state_file(tmp_path).exists()

    reset(endpoint)
    SavedRegion(tmp_path, []).load()
    assert client(endpoint, "ec2").describe_vpcs(VpcIds=[vpc_id])["Vpcs"]


def test_a_write_after_a_clean_stop_leaves_no_state_file(
    endpoint: str, fresh_region: None, tmp_path: Path
) -> None:
    # The API stops after the saver: a write in between must not bring the file back.
    state = SavedRegion(tmp_path, [])
    state.start_saving()
    state.stop_saving()
    with served_with_durable_writes(state) as durable:
        client(durable, "ec2").create_vpc(CidrBlock="10.6.0.0/16")
    assert not state_file(tmp_path).exists()


def test_a_refresh_keeps_its_cancel_and_rollback_requests_through_a_save() -> None:
    refresh = InstanceRefresh("id-1", "web", "Rolling", {}, None, 2, previous_version=3)
    refresh.cancel_requested.set()
    loaded = pickle.loads(pickle.dumps(refresh))
    assert loaded.cancel_requested.is_set() and not loaded.rollback_requested.is_set()
    assert loaded.previous_version == 3 and loaded.as_shape() == refresh.as_shape()
