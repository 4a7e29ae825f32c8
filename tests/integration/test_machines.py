"""Real machines: systemd-nspawn on the cached base image, VPC networking, IMDS, cloud-init.

Needs root, systemd-nspawn and the base image (built once, ~90 s, if not cached).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import machine_support
from tests.integration.machine_support import free_subnets, machine_runtime, run_state_dir
from webfleet.localregion.ec2.machines import MachineRuntime, MachineSpec
from webfleet.localregion.images.baseimage import BaseImage, default_cache_dir, ensure_base_image
from webfleet.localregion.runtime.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.runtime_minutes(0.5)]

if os.geteuid() != 0 or shutil.which("systemd-nspawn") is None:
    pytest.fail("machines need root and systemd-nspawn: run scripts/bootstrap")

# Every run gets its own state directory under RUNS and its own pair of subnets of 10.213.0.0/16
# (see machine_support).
RUNS = Path("/tmp/webfleet-test-machines")
_THIRD = free_subnets(213, count=2)
VPC = f"vpc-0test{random.getrandbits(48):012x}"
SUBNETS = (f"10.213.{_THIRD}.0/24", f"10.213.{_THIRD + 1}.0/24")
BOOT_TIMEOUT = 90.0
IMDS = "http://169.254.169.254"

UNIT = """\
[Unit]
Description=test web server
[Service]
ExecStart=/usr/bin/python3 -m http.server 8000 --directory /srv/www
Restart=always
[Install]
WantedBy=multi-user.target
"""


def user_data(instance_id: str) -> bytes:
    return (
        textwrap.dedent(
            """\
            #cloud-config
            write_files:
              - path: /etc/systemd/system/hello-web.service
                content: |
            {unit}
              - path: /srv/www/index.html
                content: "instance {id}\\n"
            runcmd:
              - [sh, -c, "echo {id} > /var/lib/webfleet-marker"]
              - [systemctl, enable, --now, hello-web.service]
            """
        )
        .replace("{unit}", textwrap.indent(UNIT, " " * 6).rstrip("\n"))
        .replace("{id}", instance_id)
        .encode()
    )


def spec(image: BaseImage, number: int, subnet: int = 1) -> MachineSpec:
    instance_id = f"i-0test{number:012d}"
    return MachineSpec(
        instance_id=instance_id,
        layers=(image.rootfs,),
        private_ip=f"10.213.{_THIRD + subnet - 1}.{10 + number}",
        prefixlen=24,
        vpc_id=VPC,
        subnet_cidrs=SUBNETS,
        availability_zone=f"us-east-1{'ab'[subnet - 1]}",
        region="us-east-1",
        ami_id="ami-0000000000000base",
        user_data=user_data(instance_id),
        ssh_key=("webfleet", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2x test@webfleet"),
        # Boots allowing v1; the lifecycle test then requires tokens, as
        # ModifyInstanceMetadataOptions does (test_machine_identity boots with them required).
        http_tokens="optional",
    )


def http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return str(response.read().decode())
    except OSError:
        return None


def wait_answering(ip: str, timeout: float = 30.0) -> bool:
    return wait_until(lambda: http_get(f"http://{ip}:8000/") is not None, timeout, 0.1)


def leftovers(state_dir: Path, instance_ids: list[str]) -> list[str]:
    """Everything of the region still on the host: should be empty."""
    return machine_support.leftovers(
        state_dir, instance_ids, vpc_ids=[VPC], machine_directories=True
    )


@pytest.fixture(scope="module")
def image() -> BaseImage:
    return ensure_base_image(default_cache_dir(), lambda _: None)


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    yield from run_state_dir(RUNS, lambda region: leftovers(region, []))


@pytest.fixture(scope="module")
def runtime(state_dir: Path) -> Iterator[MachineRuntime]:
    yield from machine_runtime(state_dir)


def console_tail(runtime: MachineRuntime, machine: MachineSpec, lines: int = 60) -> str:
    text = runtime.console_output(machine.instance_id)
    return "console:\n" + "\n".join(text.splitlines()[-lines:])


def in_machine(runtime: MachineRuntime, instance_id: str, command: str) -> str:
    result = runtime.run_in(instance_id, ["sh", "-c", command], timeout=30)
    return result.stdout.strip()


def test_one_machine_lifecycle(runtime: MachineRuntime, image: BaseImage, state_dir: Path) -> None:
    one = spec(image, 1)
    started = time.monotonic()
    runtime.launch(one)
    assert runtime.wait_running(one.instance_id, BOOT_TIMEOUT), console_tail(runtime, one)
    booted = time.monotonic() - started
    assert wait_answering(one.private_ip)
    answering = time.monotonic() - started
    print(f"\none machine: running in {booted:.1f} s, answering on :8000 in {answering:.1f} s")

    status = runtime.run_in(one.instance_id, ["cloud-init", "status", "--wait"], timeout=120)
    assert "status: done" in status.stdout, status.stdout + status.stderr
    assert http_get(f"http://{one.private_ip}:8000/") == f"instance {one.instance_id}\n"
    assert [m.state.value for m in runtime.list()] == ["running"]

    # IMDSv2 from inside the machine; v1 refused once the instance requires tokens.
    runtime.set_http_tokens(one.instance_id, "required")
    token = in_machine(
        runtime,
        one.instance_id,
        f"curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' {IMDS}/latest/api/token",
    )
    assert token
    get = f"curl -s -H 'X-aws-ec2-metadata-token: {token}' {IMDS}/latest"
    assert in_machine(runtime, one.instance_id, f"{get}/meta-data/instance-id") == one.instance_id
    assert in_machine(runtime, one.instance_id, f"{get}/meta-data/local-ipv4") == one.private_ip
    assert in_machine(runtime, one.instance_id, f"{get}/meta-data/public-keys/") == "0=webfleet"
    key = in_machine(runtime, one.instance_id, f"{get}/meta-data/public-keys/0/openssh-key")
    assert key.startswith("ssh-ed25519 ")
    document = json.loads(
        in_machine(runtime, one.instance_id, f"{get}/dynamic/instance-identity/document")
    )
    assert document["instanceId"] == one.instance_id
    assert document["availabilityZone"] == "us-east-1a"
    v1 = f"curl -s -o /dev/null -w '%{{http_code}}' {IMDS}/latest/meta-data/instance-id"
    assert in_machine(runtime, one.instance_id, v1) == "401"
    bad = v1.replace("curl -s", "curl -s -H 'X-aws-ec2-metadata-token: forged'")
    assert in_machine(runtime, one.instance_id, bad) == "401"
    # The machine's only routes: its subnets and the metadata address, no default route.
    routes = in_machine(runtime, one.instance_id, "ip route")
    assert "default" not in routes and "169.254.169.254 dev eth0" in routes

    assert runtime.console_output(one.instance_id).strip()

    # Stop keeps the upper layer; start boots it again with its state and enabled units.
    started = time.monotonic()
    assert runtime.stop(one.instance_id).state.value == "stopped"
    print(f"stopped in {time.monotonic() - started:.1f} s")
    assert (runtime.upper_dir(one.instance_id) / "var/lib/webfleet-marker").is_file()
    assert not [line for line in leftovers(state_dir, []) if "nspawn" in line]
    runtime.start(one.instance_id)
    assert runtime.wait_running(one.instance_id, BOOT_TIMEOUT), console_tail(runtime, one)
    marker = "cloud-init status --wait >/dev/null; cat /var/lib/webfleet-marker"
    assert in_machine(runtime, one.instance_id, marker) == one.instance_id
    assert wait_answering(one.private_ip)

    runtime.terminate(one.instance_id)
    assert runtime.list() == []
    assert leftovers(state_dir, [one.instance_id]) == []


def test_three_machines_at_once(runtime: MachineRuntime, image: BaseImage, state_dir: Path) -> None:
    specs = [spec(image, 2, subnet=1), spec(image, 3, subnet=2), spec(image, 4, subnet=1)]
    started = time.monotonic()
    for each in specs:
        runtime.launch(each)
    times = {}
    for each in specs:
        assert wait_answering(each.private_ip, BOOT_TIMEOUT), console_tail(runtime, each)
        times[each.instance_id] = round(time.monotonic() - started, 1)
    print(f"\nthree machines answering on :8000 after {times} s")
    # Across subnets of the VPC: the bridge carries both, routes are on-link.
    other = specs[1].private_ip
    assert in_machine(runtime, specs[0].instance_id, f"curl -s {other}:8000/").startswith(
        "instance "
    )
    for each in specs:
        runtime.terminate(each.instance_id)
    assert leftovers(state_dir, [s.instance_id for s in specs]) == []


CRASHING_DAEMON = """\
import os, sys
from pathlib import Path
from webfleet.localregion.ec2.machines import MachineRuntime, MachineSpec
spec = MachineSpec.from_json(__import__("json").loads(sys.argv[2]))
runtime = MachineRuntime(Path(sys.argv[1]))
runtime.launch(spec)
ok = runtime.wait_running(spec.instance_id, 90)
print("running" if ok else "not running", flush=True)
if not ok:
    print(runtime.list(), runtime.console_output(spec.instance_id)[-6000:], file=sys.stderr)
os._exit(0)  # a crash: no cleanup of any kind
"""


def test_new_process_cleans_up_after_a_crashed_daemon(image: BaseImage, state_dir: Path) -> None:
    crashed = spec(image, 5)
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_DAEMON, str(state_dir), json.dumps(crashed.to_json())],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.stdout.strip() == "running", result.stderr
    assert wait_answering(crashed.private_ip)
    assert leftovers(state_dir, [crashed.instance_id])  # the machine outlived its "daemon"

    MachineRuntime(state_dir).shutdown_all()
    assert leftovers(state_dir, [crashed.instance_id]) == []
    assert http_get(f"http://{crashed.private_ip}:8000/") is None
