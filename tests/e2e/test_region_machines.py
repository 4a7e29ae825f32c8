"""The local region with machines in it: status lists them, a killed daemon's machines are
cleaned up by the next `up`, and `down` leaves nothing on the host.

Boots the base image (no bake needed): these are the region's own guarantees.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Sandbox
from webfleet.localregion.ec2.network import link_alias, netns_prefix
from webfleet.localregion.ec2.vpc_guard import guard_metric
from webfleet.localregion.host.procfs import is_alive, processes
from webfleet.localregion.images.baseimage import ensure_base_image
from webfleet.localregion.images.catalogue import debian_image
from webfleet.localregion.persistence.region_state import state_file
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.processes import wait_until
from webfleet.localregion.runtime.settings import RegionSettings
from webfleet.targets import region_settings

pytestmark = [pytest.mark.e2e, pytest.mark.runtime_minutes(0.5)]

BOOT_SECONDS = 120.0


@pytest.fixture(scope="module")
def region(sandbox: Sandbox) -> RegionSettings:
    settings = region_settings(sandbox.stack())
    daemon.up(settings)
    return settings


def launch(sandbox: Sandbox, region: RegionSettings, count: int) -> list[dict[str, Any]]:
    ec2 = sandbox.target().ec2()
    ami = debian_image(ensure_base_image(region.image_cache, print)).ami_id
    instances = ec2.run_instances(ImageId=ami, MinCount=count, MaxCount=count)["Instances"]
    ids = [instance["InstanceId"] for instance in instances]
    deadline = time.monotonic() + BOOT_SECONDS
    while True:
        described = [
            instance
            for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]
            for instance in reservation["Instances"]
        ]
        if all(instance["State"]["Name"] == "running" for instance in described):
            return [dict(instance) for instance in described]
        assert time.monotonic() < deadline, [i["State"] for i in described]
        time.sleep(0.5)


def host_leftovers(state_dir: Path) -> list[str]:
    """Everything of the region's on the host: mounts, netns, links, routes, processes."""
    found: list[str] = []
    # Whole lines: an overlay elsewhere naming its layers here (upperdir=) counts too.
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        found += [f"mount {line.split()[4]}" for line in mountinfo if str(state_dir) in line]
    found += [
        f"netns {name}"
        for name in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else [])
        if name.startswith(netns_prefix(state_dir))
    ]
    links = json.loads(subprocess.run(["ip", "-json", "link"], capture_output=True).stdout)
    found += [
        f"link {link['ifname']}" for link in links if link.get("ifalias") == link_alias(state_dir)
    ]
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    found += [
        f"route {line}"
        for line in routes.splitlines()
        if f"metric {guard_metric(state_dir)}" in line
    ]
    for process in processes():
        cmdline = b" ".join(process.cmdline)
        if os.fsencode(state_dir) in cmdline:
            found.append(f"process {process.pid}: {cmdline.decode(errors='replace')[:200]}")
    return found


def test_status_lists_the_machines(sandbox: Sandbox, region: RegionSettings) -> None:
    instances = launch(sandbox, region, 2)
    status = daemon.status(region)
    listed = {machine.instance_id: machine for machine in status.machines}
    for instance in instances:
        machine = listed[instance["InstanceId"]]
        assert machine.ami_id == instance["ImageId"]
        assert machine.private_ip == instance["PrivateIpAddress"]
        assert machine.availability_zone == instance["Placement"]["AvailabilityZone"]
        assert machine.state.value == "running"
        assert machine.uptime_seconds is not None and machine.uptime_seconds >= 0
        assert instance["InstanceId"] in status.describe()
    # They booted in the default VPC, whose CIDR is the region's (AWS's unless two regions run).
    ec2 = sandbox.target().ec2()
    (default_vpc,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert default_vpc["CidrBlock"] == region.default_vpc_cidr
    assert all(
        ipaddress.ip_address(i["PrivateIpAddress"]) in ipaddress.ip_network(region.default_vpc_cidr)
        for i in instances
    )
    document = status.as_dict()
    machines = document["machines"]
    assert isinstance(machines, list)
    assert {m["instance_id"] for m in machines} >= set(listed)


def test_up_after_a_killed_daemon_whose_records_are_lost_removes_its_machines(
    sandbox: Sandbox, region: RegionSettings
) -> None:
    # With its saved records the next daemon adopts the machines (tests/e2e/test_group_health.py);
    # without them nothing says whose they are: they are orphans.
    before = daemon.status(region)
    assert before.pid is not None and before.machines
    os.kill(before.pid, signal.SIGKILL)
    assert wait_until(lambda: not is_alive(before.pid or 0), 10)
    # Its machines outlive it (their own sessions): mounts, namespaces, nspawn processes.
    assert any(line.startswith("mount") for line in host_leftovers(region.state_dir))

    state_file(region.state_dir).unlink(missing_ok=True)
    daemon.up(region)
    leftovers = host_leftovers(region.state_dir)
    old = [m.instance_id for m in before.machines]
    assert not [line for line in leftovers if any(i in line for i in old)], leftovers
    assert daemon.status(region).machines == ()
    # And the recovered region boots machines again.
    assert len(launch(sandbox, region, 1)) == 1


def test_down_leaves_nothing_on_the_host(sandbox: Sandbox, region: RegionSettings) -> None:
    assert daemon.status(region).machines
    report = daemon.down(region)
    assert report.stopped_pid is not None and not report.forced
    assert host_leftovers(region.state_dir) == []
    assert not region.state_dir.exists()
