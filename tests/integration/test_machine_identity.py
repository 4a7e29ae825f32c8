"""Machines look like EC2 to cloud-init: IMDSv2 tokens at boot, Debian's `admin` default user.

cloud-init 22.4 uses IMDSv2 tokens only on a platform it identifies as AWS; the runtime gives each
machine an EC2-style /sys/hypervisor/uuid for that. Needs root, systemd-nspawn, ssh-keygen and
the base image (built once, ~2-3 min, if not cached).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.machine_support import (
    free_subnets,
    leftovers,
    machine_runtime,
    run_state_dir,
)
from webfleet.localregion.ec2.machines import MachineRuntime, MachineSpec
from webfleet.localregion.ec2.nspawn import ec2_platform_uuid
from webfleet.localregion.images.baseimage import BaseImage, default_cache_dir, ensure_base_image

pytestmark = [pytest.mark.integration, pytest.mark.runtime_minutes(0.2)]

if os.geteuid() != 0 or shutil.which("systemd-nspawn") is None:
    pytest.fail("machines need root and systemd-nspawn: run scripts/bootstrap")

# As in test_machines (see machine_support): a state directory per run under RUNS and a subnet
# of 10.214.0.0/16 that only lives on the bridge the run makes.
RUNS = Path("/tmp/webfleet-test-machine-identity")
BOOT_TIMEOUT = 90.0
IMDS = "http://169.254.169.254"
INSTANCE_ID = "i-0identity00000001"


@pytest.fixture(scope="module")
def image() -> BaseImage:
    return ensure_base_image(default_cache_dir(), lambda _: None)


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    yield from run_state_dir(RUNS, lambda region: leftovers(region, [INSTANCE_ID]))


@pytest.fixture(scope="module")
def runtime(state_dir: Path) -> Iterator[MachineRuntime]:
    yield from machine_runtime(state_dir)


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A fresh ed25519 key pair: (private key file, OpenSSH public key)."""
    private = tmp_path_factory.mktemp("keys") / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "webfleet-test", "-f", str(private)],
        check=True,
    )
    return private, private.with_suffix(".pub").read_text().strip()


USER_DATA = textwrap.dedent(
    """\
    #cloud-config
    write_files:
      - path: /var/lib/webfleet-identity
        content: "user data ran\\n"
    """
).encode()


def in_machine(runtime: MachineRuntime, command: str, timeout: float = 30) -> str:
    result = runtime.run_in(INSTANCE_ID, ["sh", "-c", command], timeout=timeout)
    return result.stdout.strip()


def test_cloud_init_uses_imdsv2_and_the_admin_user(
    runtime: MachineRuntime, image: BaseImage, state_dir: Path, key_pair: tuple[Path, str]
) -> None:
    private_key, public_key = key_pair
    subnet = f"10.214.{free_subnets(214)}"
    machine = MachineSpec(
        instance_id=INSTANCE_ID,
        layers=(image.rootfs,),
        private_ip=f"{subnet}.10",
        prefixlen=24,
        vpc_id=f"vpc-0test{random.getrandbits(48):012x}",
        subnet_cidrs=(f"{subnet}.0/24",),
        availability_zone="us-east-1a",
        region="us-east-1",
        ami_id="ami-0000000000000base",
        user_data=USER_DATA,
        ssh_key=("webfleet-test", public_key),
        http_tokens="required",  # IMDSv1 refused from the first boot on
    )
    runtime.launch(machine)
    assert runtime.wait_running(INSTANCE_ID, BOOT_TIMEOUT), runtime.console_output(INSTANCE_ID)

    status = runtime.run_in(INSTANCE_ID, ["cloud-init", "status", "--wait", "--long"], 120)
    assert "status: done" in status.stdout, status.stdout + status.stderr
    result = json.loads(in_machine(runtime, "cat /run/cloud-init/result.json"))
    assert result["v1"]["errors"] == []
    assert result["v1"]["datasource"].startswith("DataSourceEc2")
    assert in_machine(runtime, "cat /var/lib/webfleet-identity") == "user data ran"

    # What made it work: the platform reads as AWS, so cloud-init fetched a token.
    assert in_machine(runtime, "cat /sys/hypervisor/uuid") == ec2_platform_uuid(INSTANCE_ID)
    assert in_machine(runtime, "cloud-init query cloud_name") == "aws"
    log = in_machine(runtime, "cat /var/log/cloud-init.log")
    assert "Fetching Ec2 IMDSv2 API Token" in log
    v1 = f"curl -s -o /dev/null -w '%{{http_code}}' {IMDS}/latest/meta-data/instance-id"
    assert in_machine(runtime, v1) == "401"

    # Debian's AMI user: the key pair's key, passwordless sudo, no password login.
    authorized = in_machine(runtime, "cat /home/admin/.ssh/authorized_keys")
    assert public_key in authorized.splitlines()
    assert in_machine(runtime, "runuser -u admin -- sudo -n id -un") == "root"
    assert in_machine(runtime, "passwd -S admin").split()[1] == "L"
    assert in_machine(runtime, "getent passwd debian") == ""

    # And what Packer does with it: ssh in as admin with the private key.
    command = [
        "ssh", "-i", str(private_key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        f"admin@{machine.private_ip}", "id -un",
    ]  # fmt: skip
    ssh = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert ssh.stdout.strip() == "admin", ssh.stderr

    runtime.terminate(INSTANCE_ID)
    assert leftovers(state_dir, [INSTANCE_ID]) == []
