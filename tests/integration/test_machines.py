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

from webfleet.localregion.baseimage import BaseImage, default_cache_dir, ensure_base_image
from webfleet.localregion.machines import CGROUP_PARENT, CGROUP_ROOTS, MachineRuntime, MachineSpec
from webfleet.localregion.network import link_alias, netns_prefix
from webfleet.localregion.processes import wait_until

pytestmark = pytest.mark.integration

if os.geteuid() != 0 or shutil.which("systemd-nspawn") is None:
    pytest.fail("machines need root and systemd-nspawn: run scripts/bootstrap")

# Every run gets its own state directory under RUNS (names of netns and links are tagged with
# it) and its own pair of subnets of 10.213.0.0/16, which live only on the bridge the run makes:
# whatever a killed run left behind can never collide with the next one, which removes it.
RUNS = Path("/tmp/webfleet-test-machines")
OWNER_FILE = "owner"


def _free_subnet_pair() -> int:
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True
    )
    used = {int(part.split(".")[2]) for part in routes.stdout.split() if part.startswith("10.213.")}
    free = [n for n in range(2, 254, 2) if n not in used and n + 1 not in used]
    return random.choice(free)


_THIRD = _free_subnet_pair()
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
        # cloud-init 22.4 only uses IMDSv2 tokens when it detects AWS by DMI, which a container
        # lacks: it boots with v1, then the test requires tokens (ModifyInstanceMetadataOptions).
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
    found: list[str] = []
    root = str(state_dir)
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        found += [f"mount {line.split()[4]}" for line in mountinfo if root in line.split()[4]]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {n}" for n in netns.split() if n.startswith(netns_prefix(state_dir))]
    links = json.loads(subprocess.run(["ip", "-json", "link"], capture_output=True).stdout)
    found += [
        f"link {link['ifname']}"
        for link in links
        if link.get("ifalias") == link_alias(state_dir) or link["ifname"].startswith("wf-")
    ]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if root in cmdline and int(pid) != os.getpid():
            found.append(f"process {pid} {cmdline.replace(chr(0), ' ')[:120]}")
    for cgroup_root in CGROUP_ROOTS:
        found += [
            f"cgroup {cgroup_root / CGROUP_PARENT / i}"
            for i in instance_ids
            if (cgroup_root / CGROUP_PARENT / i).exists()
        ]
    if (state_dir / "machines").exists() and any((state_dir / "machines").iterdir()):
        found.append("machine directories")
    return found


@pytest.fixture(scope="module")
def image() -> BaseImage:
    return ensure_base_image(default_cache_dir(), lambda _: None)


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(run: Path) -> bool:
    try:
        pid, started = (run / OWNER_FILE).read_text().split()
    except (OSError, ValueError):
        return False  # a run dies before it writes this only if it made nothing yet
    return _start_time(int(pid)) == started


def remove_dead_runs() -> None:
    """Earlier runs of this module killed before their fixture cleaned up: remove their all."""
    if not RUNS.is_dir():
        return
    for run in sorted(RUNS.glob("run-*")):
        if run.is_dir() and not _owner_alive(run):
            MachineRuntime(run / "region").shutdown_all()
            shutil.rmtree(run)


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    remove_dead_runs()
    run = RUNS / f"run-{os.getpid()}-{random.getrandbits(32):08x}"
    run.mkdir(parents=True)
    (run / OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    yield run / "region"
    if not leftovers(run / "region", []):
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="module")
def runtime(state_dir: Path) -> Iterator[MachineRuntime]:
    machines = MachineRuntime(state_dir)
    try:
        yield machines
    finally:
        machines.shutdown_all()  # whatever a test left, even after a failure


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
    assert in_machine(runtime, one.instance_id, "cat /var/lib/webfleet-marker") == one.instance_id
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
from webfleet.localregion.machines import MachineRuntime, MachineSpec
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
