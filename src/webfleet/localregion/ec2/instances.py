"""EC2 instances of the local region as real machines.

moto keeps the records (ids, addresses, tags, states); this component keeps them in step with the
machines: RunInstances boots one, Stop/Start/Terminate halt, boot or remove it, CreateImage
snapshots it, and each record's state follows its machine (pending until systemd inside is up).
The slow parts run on worker threads, so the API answers at once, as EC2's does; clients poll
DescribeInstances / DescribeImages for the state they wait for, as they do on AWS.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webfleet.localregion.ec2 import status_checks
from webfleet.localregion.ec2.machines import Machine, MachineRuntime, MachineSpec, MachineState
from webfleet.localregion.ec2.vpc_guard import VpcGuards
from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.images.baseimage import BaseImage
from webfleet.localregion.images.catalogue import CatalogueImage
from webfleet.localregion.images.layers import ImageLayers
from webfleet.localregion.runtime.periodic import Periodic
from webfleet.localregion.runtime.settings import RegionSettings

log = logging.getLogger(__name__)

# A cold machine reaches `systemctl is-system-running` = running in 3-8 s here; cloud-init's
# user data can take longer, but EC2 also reports running before cloud-init ends.
BOOT_TIMEOUT_SECONDS = 180.0
_WAIT_SLICE_SECONDS = 1.0
# On stop, workers get this long in all to notice; cleanup then removes their machines anyway.
_JOIN_SECONDS = 5.0

# EC2's instance state codes.
PENDING = ("pending", 0)
RUNNING = ("running", 16)
SHUTTING_DOWN = ("shutting-down", 32)
TERMINATED = ("terminated", 48)
STOPPING = ("stopping", 64)
STOPPED = ("stopped", 80)


@dataclass(frozen=True)
class LaunchRequest:
    """What RunInstances decided about one instance, read from its moto record."""

    spec: MachineSpec
    record: Any  # moto's Instance: its state is set from the worker threads


class InstanceMachines:
    """The `machines` component: owns the machines, AMI layers and VPC routes of a region."""

    name = "machines"

    def __init__(
        self, settings: RegionSettings, base_image: BaseImage, base_ami: CatalogueImage
    ) -> None:
        self.runtime = MachineRuntime(settings.state_dir)
        self.layers = ImageLayers(settings.state_dir)
        self.guards = VpcGuards(settings.state_dir)
        self.default_vpc_cidr = settings.default_vpc_cidr
        self._base_image = base_image
        self._base_ami = base_ami
        self._workers: set[threading.Thread] = set()
        self._workers_lock = threading.Lock()
        self._last_operation: dict[str, threading.Thread] = {}
        self._instances: set[str] = set()  # launched by this process, not yet terminated
        self._terminations: set[str] = set()  # asked to terminate
        self._records: dict[str, Any] = {}  # moto's records of self._instances
        self._rebooting: set[str] = set()  # down on purpose: not a failed status check
        self._restored: dict[str, Any] | None = None  # the previous daemon's snapshot()
        self._stopping = threading.Event()
        self._status_checks = Periodic(
            "EC2 status checks",
            status_checks.STATUS_CHECK_SECONDS,
            lambda: self._check(settings),
        )

    # --- component ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._restored is None:
            # moto's records died with the previous daemon: whatever it left is an orphan.
            self.cleanup()
        self.layers.register(self._base_ami.ami_id, (self._base_image.rootfs,))
        from webfleet.localregion.ec2 import (
            hooks as ec2_hooks,  # imports moto: after MOTO_* settings
        )

        ec2_hooks.install(self)
        if self._restored is not None:
            self._adopt(self._restored)
        status_checks.report_impaired_instances.apply()
        self._status_checks.start()

    def stop(self) -> None:
        self._stopping.set()
        self._status_checks.stop()
        from webfleet.localregion.ec2 import hooks as ec2_hooks

        ec2_hooks.uninstall(self)
        with self._workers_lock:
            workers = list(self._workers)
        deadline = time.monotonic() + _JOIN_SECONDS
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self.cleanup()

    def cleanup(self) -> None:
        remove_region_machines(self.runtime, self.guards, self.layers)

    # --- kept across a daemon restart (persistence/region_state.py) -----------------------------

    def snapshot(self) -> object:
        with self._workers_lock:
            return {
                "layers": self.layers.registrations(),
                "instances": set(self._instances),
                "terminations": set(self._terminations),
                "records": dict(self._records),
            }

    def restore(self, state: object) -> None:
        self._restored = state if isinstance(state, dict) else None

    def _adopt(self, state: dict[str, Any]) -> None:
        """Carry on with the previous daemon's instances: its live machines are theirs again;
        one that died with it boots again (as EC2 recovers an instance of a failed host); what
        was on its way finishes (booting, stopping, terminating); a machine moto's records never
        held (launched after the last save) is removed."""
        for ami_id, layers in state["layers"].items():
            self.layers.register(ami_id, layers)
        records: dict[str, Any] = state["records"]
        with self._workers_lock:
            self._instances = set(state["instances"]) & set(records)
            self._terminations = set(state["terminations"]) & self._instances
            self._records = {i: records[i] for i in self._instances}
        machines = {m.instance_id: m for m in self.runtime.recover()}
        for orphan in sorted(set(machines) - self._instances):
            log.info("removing %s: the records saved before the restart do not hold it", orphan)
            self._in_background(orphan, "remove", functools.partial(self.runtime.terminate, orphan))
        for instance_id in sorted(self._instances):
            self._resume(self._records[instance_id], machines.get(instance_id))
        log.info("adopted %d instances of the previous daemon", len(self._instances))

    def _resume(self, record: Any, machine: Machine | None) -> None:
        from webfleet.localregion.ec2 import hooks as ec2_hooks

        instance_id = record.id
        if instance_id in self._terminations:
            release = ec2_hooks.address_release(record)
            if machine is None:
                self._forget(record)
                release()
                return
            self._in_background(instance_id, "terminate", lambda: self._terminate(record, release))
        elif record.state in (SHUTTING_DOWN[0], TERMINATED[0]):
            self._forget(record)
        elif machine is None:
            # Accepted by RunInstances, but killed before its machine was made.
            spec = ec2_hooks.instance_spec(record.ec2_backend, self, record)
            self._in_background(instance_id, "launch", lambda: self._launch_again(spec, record))
        elif record.state == STOPPING[0]:
            self._in_background(instance_id, "stop", lambda: self._stop(record))
        elif record.state == STOPPED[0]:
            return
        elif machine.pid is None:
            self._in_background(instance_id, "recover", lambda: self._recover(record))
        elif record.state == PENDING[0]:
            self._in_background(instance_id, "launch", lambda: self._await_boot(record))

    def _launch_again(self, spec: MachineSpec, record: Any) -> None:
        _set_state(record, PENDING)
        self._launch(LaunchRequest(spec, record))

    def _recover(self, record: Any) -> None:
        """Boot a machine that died with the previous daemon; its instance stays as it was
        (running: no failed status check while it boots)."""
        with self._workers_lock:
            self._rebooting.add(record.id)
        try:
            self.runtime.start(record.id)
            self._await_boot(record)
        finally:
            with self._workers_lock:
                self._rebooting.discard(record.id)

    def _forget(self, record: Any) -> None:
        with self._workers_lock:
            self._instances.discard(record.id)
            self._terminations.discard(record.id)
            self._records.pop(record.id, None)
        _set_state(record, TERMINATED)

    # --- called by the EC2 hooks ----------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> None:
        with self._workers_lock:
            self._instances.add(request.spec.instance_id)
            self._records[request.spec.instance_id] = request.record
        _set_state(request.record, PENDING)
        self._in_background(request.spec.instance_id, "launch", lambda: self._launch(request))

    def stop_instance(self, record: Any) -> None:
        if self._has_machine(record.id):
            status_checks.clear(record)
            _set_state(record, STOPPING)
            self._in_background(record.id, "stop", lambda: self._stop(record))

    def start_instance(self, record: Any) -> None:
        if self._has_machine(record.id):
            _set_state(record, PENDING)
            self._in_background(record.id, "start", lambda: self._start(record))

    def reboot_instance(self, record: Any) -> None:
        """As EC2 reboots an instance: its OS restarts, the instance stays `running` (and keeps
        its address, disk and status checks)."""
        if self._has_machine(record.id) and not self._terminating(record.id):
            with self._workers_lock:
                self._rebooting.add(record.id)
            self._in_background(record.id, "reboot", lambda: self._reboot(record))

    def terminate_instance(self, record: Any, release: Callable[[], None]) -> bool:
        """Start removing the machine; release() once it is gone. False if there is none to
        remove (not a machine of ours, or terminating already)."""
        if self._terminating(record.id):
            # Asked again: still shutting down until its machine is gone (moto said terminated).
            if self._has_machine(record.id):
                _set_state(record, SHUTTING_DOWN)
            return False
        if not self._has_machine(record.id):
            return False
        with self._workers_lock:
            self._terminations.add(record.id)
        _set_state(record, SHUTTING_DOWN)
        self._in_background(record.id, "terminate", lambda: self._terminate(record, release))
        return True

    def create_image(self, instance_id: str, image: Any) -> None:
        if not self._has_machine(instance_id):
            return
        image.state = "pending"
        self._in_background(instance_id, "snapshot", lambda: self._snapshot(instance_id, image))

    def copy_image(self, source_ami_id: str, ami_id: str) -> None:
        # Layers are read-only: the copy shares the source's, which stay while either is
        # registered (a copy in another account or region of this host would too).
        if self.layers.knows(source_ami_id):
            self.layers.register(ami_id, self.layers.layers_of(source_ami_id))

    def deregister_image(self, ami_id: str) -> None:
        self.layers.deregister(ami_id)
        self._collect_layers()

    def set_http_tokens(self, instance_id: str, http_tokens: str) -> None:
        if self._has_machine(instance_id):
            self.runtime.set_http_tokens(instance_id, http_tokens)

    def console_output(self, instance_id: str) -> str | None:
        if not self._has_machine(instance_id):
            return None
        return self.runtime.console_output(instance_id)

    # --- workers --------------------------------------------------------------------------------

    def _launch(self, request: LaunchRequest) -> None:
        instance_id = request.spec.instance_id
        try:
            self.runtime.launch(request.spec)
        except LocalRegionError as error:
            log.error("launching %s failed: %s", instance_id, error)
            self._fail(request.record, str(error))
            return
        self._await_boot(request.record)

    def _await_boot(self, record: Any) -> None:
        if self._wait_running(record.id):
            if record.state == PENDING[0]:
                _set_state(record, RUNNING)
            log.info("%s is running", record.id)
            return
        if self._stopping.is_set():
            return
        log.error("%s did not boot within %.0f s", record.id, BOOT_TIMEOUT_SECONDS)
        self._fail(record, f"the machine did not boot within {BOOT_TIMEOUT_SECONDS:.0f} s")

    def _wait_running(self, instance_id: str) -> bool:
        """wait_running in short slices, so a stopping region does not wait out a boot."""
        deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
        while not self._stopping.is_set() and time.monotonic() < deadline:
            if self.runtime.wait_running(instance_id, _WAIT_SLICE_SECONDS):
                return True
            if not self._machine_alive(instance_id):
                return False
        return False

    def _machine_alive(self, instance_id: str) -> bool:
        return any(m.instance_id == instance_id and m.pid is not None for m in self.runtime.list())

    def _fail(self, record: Any, reason: str) -> None:
        """As EC2 does with an instance that cannot start: terminated, with a reason."""
        with contextlib.suppress(LocalRegionError, OSError):
            self.runtime.terminate(record.id)
        with self._workers_lock:
            self._instances.discard(record.id)
            self._records.pop(record.id, None)
        self._collect_layers()
        _set_state(record, TERMINATED)
        _set_reason(record, "Server.InternalError", f"Server.InternalError: {reason}")

    def _stop(self, record: Any) -> None:
        self.runtime.stop(record.id)
        _set_state(record, STOPPED)

    def _start(self, record: Any) -> None:
        self.runtime.start(record.id)
        self._await_boot(record)

    def _reboot(self, record: Any) -> None:
        try:
            self.runtime.stop(record.id)
            self.runtime.start(record.id)
            if not self._wait_running(record.id):
                log.error("%s did not come back from its reboot", record.id)
        finally:
            with self._workers_lock:
                self._rebooting.discard(record.id)

    def _terminate(self, record: Any, release: Callable[[], None]) -> None:
        try:
            self.runtime.terminate(record.id)
        finally:
            release()
        with self._workers_lock:
            self._instances.discard(record.id)
            self._records.pop(record.id, None)
        # Layers no one uses any more go before the instance reads terminated, as EC2 has
        # released everything of a terminated instance by then.
        self._collect_layers()
        _set_state(record, TERMINATED)

    def _snapshot(self, instance_id: str, image: Any) -> None:
        """CreateImage without NoReboot, as on EC2: halt a running machine, copy, boot it again."""
        try:
            machine = next(m for m in self.runtime.list() if m.instance_id == instance_id)
            was_running = machine.state in (MachineState.RUNNING, MachineState.PENDING)
            if was_running:
                self.runtime.stop(instance_id)
            spec = self.runtime.spec(instance_id)
            self.layers.snapshot(image.id, self.runtime.upper_dir(instance_id), spec.layers)
            if was_running:
                self.runtime.start(instance_id)
                self._wait_running(instance_id)
        except (LocalRegionError, OSError, StopIteration) as error:
            log.error("CreateImage %s from %s failed: %s", image.id, instance_id, error)
            image.state = "failed"
            return
        image.state = "available"
        log.info("%s is available (from %s)", image.id, instance_id)

    # --- helpers --------------------------------------------------------------------------------

    def _check(self, settings: RegionSettings) -> None:
        """Every couple of seconds: EC2's status checks, and the VPCs' own services repaired."""
        status_checks.check_machines(self.runtime, settings.state_dir, self._running_records)
        for repaired in self.runtime.repair_networks():
            log.warning("repaired %s", repaired)

    def _running_records(self) -> list[Any]:
        """moto's records of this process's instances that run and are not being terminated."""
        with self._workers_lock:
            return [
                record
                for instance_id, record in self._records.items()
                if instance_id in self._instances
                and instance_id not in self._terminations
                and instance_id not in self._rebooting
                and record.state == RUNNING[0]
            ]

    def _terminating(self, instance_id: str) -> bool:
        with self._workers_lock:
            return instance_id in self._terminations

    def _has_machine(self, instance_id: str) -> bool:
        with self._workers_lock:
            return instance_id in self._instances

    def _collect_layers(self) -> None:
        in_use = {layer for spec in self.runtime.specs() for layer in spec.layers}
        for removed in self.layers.collect(in_use):
            log.info("removed unused image layer %s", removed)

    def _in_background(self, instance_id: str, what: str, work: Callable[[], None]) -> None:
        """Run work on a thread of its own, after the instance's earlier operations (in request
        order), without holding up the API request."""

        def run(previous: threading.Thread | None) -> None:
            try:
                if previous is not None:
                    previous.join()
                if not self._stopping.is_set():
                    work()
            except Exception:
                log.exception("%s of %s failed", what, instance_id)
            finally:
                with self._workers_lock:
                    self._workers.discard(threading.current_thread())

        with self._workers_lock:
            previous = self._last_operation.get(instance_id)
            worker = threading.Thread(
                target=run, args=(previous,), name=f"{what}-{instance_id}", daemon=True
            )
            self._last_operation[instance_id] = worker
            self._workers.add(worker)
        worker.start()


def remove_region_machines(runtime: MachineRuntime, guards: VpcGuards, layers: ImageLayers) -> None:
    """Machines, mounts, namespaces, bridges, routes and snapshot layers: none left. Works from
    any process (`down` after a killed daemon); every step runs even if an earlier one failed."""
    problems: list[str] = []
    for what, action in (
        ("machines", runtime.shutdown_all),
        ("VPC routes", guards.remove_all),
        ("image layers", layers.remove_all),
    ):
        try:
            action()
        except (OSError, LocalRegionError) as error:
            problems.append(f"{what}: {error}")
    if problems:
        raise LocalRegionError("cleanup left things behind: " + "; ".join(problems))


def remove_leftovers(settings: RegionSettings) -> None:
    """What a region of settings left behind, from a process that is not its daemon."""
    remove_region_machines(
        MachineRuntime(settings.state_dir),
        VpcGuards(settings.state_dir),
        ImageLayers(settings.state_dir),
    )


def _set_state(record: Any, state: tuple[str, int]) -> None:
    record._state.name, record._state.code = state


def _set_reason(record: Any, code: str, message: str) -> None:
    record.state_reason.code, record.state_reason.message = code, message


def machine_spec(
    record: Any,
    *,
    layers: tuple[Any, ...],
    subnet_cidrs: tuple[str, ...],
    subnet_cidr: str,
    vpc_id: str,
    region: str,
    ssh_key: tuple[str, str] | None,
) -> MachineSpec:
    """The machine for one moto instance record."""
    return MachineSpec(
        instance_id=record.id,
        layers=layers,
        private_ip=record.private_ip,
        prefixlen=ipaddress.ip_network(subnet_cidr).prefixlen,
        vpc_id=vpc_id,
        subnet_cidrs=subnet_cidrs,
        availability_zone=record.placement.zone,
        region=region,
        ami_id=record.image_id,
        instance_type=record.instance_type,
        user_data=user_data_bytes(record.user_data),
        ssh_key=ssh_key,
        http_tokens=record.metadata_options.http_tokens or "optional",
    )


def user_data_bytes(user_data: Any) -> bytes:
    """moto keeps user data base64-encoded (a Base64EncodedString, or a str/bytes of it)."""
    if user_data is None:
        return b""
    encoded = getattr(user_data, "_encoded_string", user_data)
    if isinstance(encoded, bytes):
        encoded = encoded.decode("ascii")
    return base64.b64decode(str(encoded))
