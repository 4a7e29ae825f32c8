"""The link between patched moto models and the one region component they call into.

The patch goes on moto's classes once per process (through the patch registry, api/patches.py);
the component it serves is installed when it starts and removed when it stops, after which the
patched methods behave as moto's own.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

from webfleet.localregion.api.patches import Patch

Component = TypeVar("Component")


class HookSlot(Generic[Component]):
    """Applies `patch` on the first install; `active` is the installed component, or None."""

    def __init__(self, patch: Patch) -> None:
        self._patch = patch
        self._lock = threading.Lock()
        self.active: Component | None = None

    def install(self, component: Component) -> None:
        self._patch.apply()  # once per process: a later install finds it applied
        with self._lock:
            self.active = component

    def uninstall(self, component: Component) -> None:
        with self._lock:
            if self.active is component:
                self.active = None
