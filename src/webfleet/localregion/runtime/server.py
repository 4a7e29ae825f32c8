"""The region process run in the foreground: prepares moto, runs the components until a signal."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Protocol

from webfleet.localregion.api.server import ApiServer
from webfleet.localregion.autoscaling.group_health import GroupHealth
from webfleet.localregion.autoscaling.scaling import TargetTracking
from webfleet.localregion.ec2.instances import InstanceMachines
from webfleet.localregion.elb.load_balancers import LoadBalancerRuntime
from webfleet.localregion.host.cgroups import cpu_usage_usec
from webfleet.localregion.images.baseimage import BaseImage, ensure_base_image
from webfleet.localregion.images.catalogue import CatalogueImage, debian_image, write_ami_catalogue
from webfleet.localregion.persistence.region_state import SavedRegion
from webfleet.localregion.runtime.settings import RegionSettings
from webfleet.paths import private_directory

log = logging.getLogger(__name__)


class RegionComponent(Protocol):
    """One runtime part of the region (machines, the API; load balancers next)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


def region_components(
    settings: RegionSettings, base_image: BaseImage, base_ami: CatalogueImage
) -> list[RegionComponent]:
    """The components in start order; they stop in reverse. A killed daemon's records are
    restored first; machines come next: their hooks must be on moto's models before the API
    takes a request. Every answered write is saved before its answer goes out; the rest (what
    the region does by itself) once a second, from once everything runs."""
    machines = InstanceMachines(settings, base_image, base_ami)
    load_balancers = LoadBalancerRuntime(settings.state_dir)
    state = SavedRegion(settings.state_dir, [machines, load_balancers])
    return [
        state.loader(),
        machines,
        load_balancers,
        GroupHealth(),
        TargetTracking(load_balancers, cpu_usage_usec),
        ApiServer(settings.host, settings.port, state.save_answered_write),
        state.saver(),
    ]


def prepare_moto_environment(settings: RegionSettings, base_ami: CatalogueImage) -> None:
    """Settings moto reads once, at import: must run before anything imports moto."""
    catalogue = write_ami_catalogue(settings.ami_catalogue, [base_ami])
    os.environ["MOTO_AMIS_PATH"] = str(catalogue)
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    # moto builds some URLs it hands out (S3, Lambda) from its own port.
    os.environ["MOTO_PORT"] = str(settings.port)


def serve(settings: RegionSettings) -> None:
    """Run the region until SIGTERM or SIGINT, then stop every component that started."""
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop_requested.set()

    # Installed first, so a signal during a slow start still ends in an orderly stop.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    private_directory(settings.state_dir)
    # `up` builds it before starting the daemon (with progress); here it is only looked up.
    base_image = ensure_base_image(settings.image_cache, log.info)
    base_ami = debian_image(base_image)
    prepare_moto_environment(settings, base_ami)
    components = region_components(settings, base_image, base_ami)
    started: list[RegionComponent] = []
    try:
        for component in components:
            if stop_requested.is_set():
                break
            log.info("starting %s", component.name)
            component.start()
            started.append(component)
        else:
            log.info(
                "local region ready at %s (state in %s)", settings.endpoint_url, settings.state_dir
            )
        stop_requested.wait()
    finally:
        _stop_all(started)


def _stop_all(started: Sequence[RegionComponent]) -> None:
    for component in reversed(started):
        try:
            component.stop()
        except Exception:
            # Keep stopping the rest: a half-stopped region leaves processes behind.
            log.exception("stopping %s failed", component.name)
