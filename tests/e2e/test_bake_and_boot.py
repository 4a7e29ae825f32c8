"""bake → boot → testinfra: real Packer, real machines, real SSH.

Order matters in this module: the first bake makes the AMI the later tests boot. (deploy after
bake is tests/e2e/test_pipeline_lifecycle.py; with a key pair the stack names,
tests/e2e/test_broken_app.py.) The project is a copy of the checkout (tests/e2e/project_copy.py),
and the stack's app.source its app, so a test can change the app and bake again without touching
the checkout.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Sandbox, quiet_progress
from tests.e2e.project_copy import SAMPLE_APP, copy_project
from webfleet.paths import ProjectPaths
from webfleet.stages.bake import BakeResult, bake
from webfleet.stages.render import LOAD_BALANCER_DNS_NAME_PLACEHOLDER, render
from webfleet.stages.verify.specs import SpecContext, run_instance_specs

pytestmark = [pytest.mark.e2e, pytest.mark.runtime_minutes(1.5)]

BOOT_SECONDS = 120.0
ALB_DNS_NAME = "webfleet-demo-local-alb-1234567890.us-east-1.elb.amazonaws.com"


@pytest.fixture(scope="module")
def project(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    return copy_project(sandbox, tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def baked(sandbox: Sandbox, project: ProjectPaths) -> BakeResult:
    return bake(sandbox.stack(), project, quiet_progress())


@pytest.fixture(scope="module")
def ec2(sandbox: Sandbox, baked: BakeResult) -> Any:
    return sandbox.target().ec2()


@pytest.fixture(scope="module")
def key_file(ec2: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    material = ec2.create_key_pair(KeyName="webfleet-e2e")["KeyMaterial"]
    path = tmp_path_factory.mktemp("keys") / "webfleet-e2e.pem"
    path.write_text(material)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def instance(
    sandbox: Sandbox, project: ProjectPaths, baked: BakeResult, ec2: Any, key_file: Path
) -> Iterator[dict[str, Any]]:
    # What the stack module does with the rendered user data, here for a made-up ALB name.
    user_data = (
        render(sandbox.stack(), project)
        .user_data.read_text()
        .replace(LOAD_BALANCER_DNS_NAME_PLACEHOLDER, ALB_DNS_NAME)
    )
    reservation = ec2.run_instances(
        ImageId=baked.ami_id,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        KeyName="webfleet-e2e",
        UserData=user_data,
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
    )
    instance_id = reservation["Instances"][0]["InstanceId"]
    try:
        yield wait_for_state(ec2, instance_id, "running")
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])
        wait_for_state(ec2, instance_id, "terminated")


def wait_for_state(ec2: Any, instance_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + BOOT_SECONDS
    while True:
        (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        current: dict[str, Any] = reservation["Instances"][0]
        if current["State"]["Name"] == state:
            return current
        assert time.monotonic() < deadline, f"{instance_id} is {current['State']}, not {state}"
        time.sleep(0.5)


SSH_OPTIONS = (
    "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
)  # fmt: skip


def ssh(key_file: Path, address: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key_file), *SSH_OPTIONS, f"admin@{address}", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_for_ssh(key_file: Path, address: str) -> None:
    deadline = time.monotonic() + BOOT_SECONDS
    while ssh(key_file, address, "true").returncode != 0:
        assert time.monotonic() < deadline, f"no SSH on {address}"
        time.sleep(1)


def test_bake_registers_a_tagged_ami_and_writes_the_manifest(baked: BakeResult, ec2: Any) -> None:
    (image,) = ec2.describe_images(ImageIds=[baked.ami_id])["Images"]
    assert image["State"] == "available"
    assert image["Name"] == baked.name and baked.name.startswith("webfleet-demo-1.0.0-")
    assert baked.tags["App"] == "webfleet-demo"
    assert baked.tags["Version"] == "1.0.0"
    assert baked.manifest_path.is_file()
    assert_packer_left_nothing(ec2)


def test_the_ami_is_an_encrypted_copy_and_the_unencrypted_one_is_gone(
    baked: BakeResult, ec2: Any
) -> None:
    (image,) = ec2.describe_images(ImageIds=[baked.ami_id])["Images"]
    (root,) = image["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True
    (snapshot,) = ec2.describe_snapshots(SnapshotIds=[root["Ebs"]["SnapshotId"]])["Snapshots"]
    assert snapshot["Encrypted"] is True
    named = ec2.describe_images(Filters=[{"Name": "name", "Values": [baked.name]}])["Images"]
    assert [i["ImageId"] for i in named] == [baked.ami_id]


def test_the_builders_ssh_port_admits_only_the_build_host(baked: BakeResult, ec2: Any) -> None:
    # Packer's temporary security group is gone after the bake; its log says what it admitted:
    # the host's address on each default subnet (the first one), not 0.0.0.0/0.
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    gateways = sorted(
        f"{next(ipaddress.ip_network(subnet['CidrBlock']).hosts())}/32"
        for subnet in subnets["Subnets"]
    )
    log = baked.log_path.read_text()
    assert f"Authorizing access to port 22 from [{' '.join(gateways)}]" in log, log[-2000:]


def test_ssh_with_the_key_pair_reaches_the_instance(
    instance: dict[str, Any], key_file: Path
) -> None:
    address = instance["PrivateIpAddress"]
    wait_for_ssh(key_file, address)
    result = ssh(key_file, address, "cat /sys/hypervisor/uuid; hostname")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        result.stdout.split()[0],
        "ip-" + address.replace(".", "-"),
    ]
    assert result.stdout.startswith("ec2")


def test_instance_specs_pass_on_a_machine_from_the_baked_ami(
    sandbox: Sandbox, instance: dict[str, Any], key_file: Path, tmp_path: Path
) -> None:
    wait_for_ssh(key_file, instance["PrivateIpAddress"])
    report = run_instance_specs(
        ROOT / "specs",
        [instance["PrivateIpAddress"]],
        ssh_user="admin",
        private_key=key_file,
        context=SpecContext.of_stack(sandbox.stack(), ALB_DNS_NAME),
        work_dir=tmp_path,
    )
    failures = [r for r in report.results if r.outcome not in ("passed",)]
    assert report.passed and not failures, failures
    assert len(report.results) >= 7


def test_console_output_shows_the_boot(ec2: Any, instance: dict[str, Any]) -> None:
    output = ec2.get_console_output(InstanceId=instance["InstanceId"], Latest=True)["Output"]
    assert "cloud-init" in output.lower()


def test_baking_a_changed_app_makes_a_new_ami_and_keeps_the_old(
    sandbox: Sandbox, project: ProjectPaths, baked: BakeResult, ec2: Any, instance: dict[str, Any]
) -> None:
    # The first bake's layer: under the id of the image Packer made, which the AMI (its
    # encrypted copy) shares; it is the only image directory so far.
    images = sandbox.region_state / "images"
    (layer,) = images.iterdir()
    pyproject = project.root / SAMPLE_APP / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "1.0.0"', 'version = "1.0.1"'))
    rebaked = bake(sandbox.stack(), project, quiet_progress())
    assert rebaked.ami_id != baked.ami_id
    assert rebaked.tags["Version"] == "1.0.1"
    states = {
        image["ImageId"]: image["State"]
        for image in ec2.describe_images(ImageIds=[baked.ami_id, rebaked.ami_id])["Images"]
    }
    assert states == {baked.ami_id: "available", rebaked.ami_id: "available"}
    (new_layer,) = set(images.iterdir()) - {layer}

    ec2.deregister_image(ImageId=baked.ami_id)
    assert layer.is_dir()  # the instance from the old AMI still runs on it
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    wait_for_state(ec2, instance["InstanceId"], "terminated")
    assert not layer.exists()
    assert new_layer.is_dir()


def test_an_interrupted_bake_leaves_no_builder_key_pair_or_security_group(
    sandbox: Sandbox, project: ProjectPaths, ec2: Any
) -> None:
    log_dir = sandbox.paths.build_dir("local") / "logs"
    before = set(log_dir.glob("packer-*.log"))
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "invoke"), "bake", "--stack", str(sandbox.stack_file)],
        cwd=ROOT,
        env={**sandbox.environment(), "WEBFLEET_BUILD_DIR": str(sandbox.paths.build_root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Interrupt once Packer has a builder machine and is waiting for it or provisioning it.
        deadline = time.monotonic() + 300
        while not builder_is_up(ec2):
            assert process.poll() is None, "bake ended before its builder ran"
            assert time.monotonic() < deadline, "Packer never launched its builder"
            time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        assert process.wait(timeout=180) != 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert set(log_dir.glob("packer-*.log")) - before, "no Packer log of the interrupted run"
    assert_packer_left_nothing(ec2)
    machines = sandbox.region_state / "machines"
    assert not machines.exists() or not list(machines.iterdir())


def packer_builders(ec2: Any, states: list[str]) -> list[dict[str, Any]]:
    """Packer's builder instances (the template's run_tags name them)."""
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "instance-state-name", "Values": states},
            {"Name": "tag:Name", "Values": ["webfleet-demo-packer-builder"]},
        ]
    )["Reservations"]
    return [instance for reservation in reservations for instance in reservation["Instances"]]


def builder_is_up(ec2: Any) -> bool:
    return bool(packer_builders(ec2, ["running"]))


def assert_packer_left_nothing(ec2: Any) -> None:
    assert packer_builders(ec2, ["pending", "running", "stopping", "stopped"]) == []
    key_pairs = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    assert not [name for name in key_pairs if name.startswith("webfleet-demo-packer-")]
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert not [g for g in groups if g["GroupName"].startswith("packer")]
