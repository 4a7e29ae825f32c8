"""The one way the local region patches moto: named patches, each applied at most once.

A service package registers each of its patches with ``@moto_patch("service.what")`` on a
function that imports moto and replaces the methods it changes. ``apply_all()``, which the API
app calls once the MOTO_* settings are in the environment, imports the modules in
PATCH_MODULES (so that every patch is registered) and applies each patch not applied yet. A
component that needs its patch before the API serves (a HookSlot's, the spread of launches)
applies that patch itself when it starts; apply_all then leaves it alone.

Where the patches are:

- ``ec2/api_fixes.py``, ``elb/api_fixes.py``, ``s3/api_fixes.py``, ``autoscaling/api_fixes.py``:
  where moto's answers differ from AWS's in ways Terraform or a client notices (each module lists
  its fixes).
- ``ec2/hooks.py``, ``elb/hooks.py``: instance, image and load balancer work handed to the
  running machines and load balancer components; ``ec2/status_checks.py``: impaired instances.
- ``autoscaling/group_health.py`` (launches spread over the group's AZs), ``members.py``
  (leaving instances drain first), ``activities.py`` (DescribeScalingActivities),
  ``traffic_sources.py`` (Attach/Detach/DescribeTrafficSources).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Final

# Importing one registers its patches. Some import moto at the top, which reads MOTO_* then:
# they are imported by apply_all, not by this module.
PATCH_MODULES: Final = (
    "webfleet.localregion.ec2.api_fixes",
    "webfleet.localregion.ec2.hooks",
    "webfleet.localregion.ec2.status_checks",
    "webfleet.localregion.elb.api_fixes",
    "webfleet.localregion.elb.hooks",
    "webfleet.localregion.s3.api_fixes",
    "webfleet.localregion.autoscaling.api_fixes",
    "webfleet.localregion.autoscaling.group_health",
    "webfleet.localregion.autoscaling.members",
    "webfleet.localregion.autoscaling.activities",
    "webfleet.localregion.autoscaling.traffic_sources",
)


class Patch:
    """A named change to moto's classes, applied at most once per process.

    Patches wrap the methods they replace, so a second application would stack on the first.
    """

    def __init__(self, name: str, change: Callable[[], None]) -> None:
        self.name = name
        self._change = change
        self._applied = False
        self._lock = threading.Lock()

    @property
    def applied(self) -> bool:
        return self._applied

    def apply(self) -> None:
        # A concurrent caller waits for the first one to finish rather than see a half patch.
        with self._lock:
            if self._applied:
                return
            # Marked first: a patch that failed half-way must not stack on a retry (its error
            # still stops whoever applied it).
            self._applied = True
            self._change()

    def __repr__(self) -> str:
        return f"Patch({self.name!r}, applied={self._applied})"


class PatchRegistry:
    """The patches registered in this process, by name, in the order they were registered."""

    def __init__(self) -> None:
        self._patches: dict[str, Patch] = {}
        self._lock = threading.Lock()

    def register(self, name: str, change: Callable[[], None]) -> Patch:
        with self._lock:
            if name in self._patches:
                raise ValueError(f"a moto patch named {name!r} is registered already")
            patch = self._patches[name] = Patch(name, change)
        return patch

    def patch(self, name: str) -> Callable[[Callable[[], None]], Patch]:
        """A decorator: registers the function as the patch `name` and returns the Patch."""

        def register(change: Callable[[], None]) -> Patch:
            return self.register(name, change)

        return register

    def patches(self) -> list[Patch]:
        with self._lock:
            return list(self._patches.values())

    def apply_all(self) -> None:
        for patch in self.patches():
            patch.apply()


registry: Final = PatchRegistry()
moto_patch: Final = registry.patch


def apply_all() -> None:
    """Register and apply every service package's patches (idempotent).

    Import moto, and so call this, only after the MOTO_* settings are in the environment.
    """
    for module in PATCH_MODULES:
        importlib.import_module(module)
    registry.apply_all()
