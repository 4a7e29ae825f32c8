"""The link between patched moto models and the one region component they call into.

Patches go on moto's classes once per process; the component they serve is installed when it
starts and removed when it stops, after which the patched methods behave as moto's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Component = TypeVar("Component")


class HookSlot(Generic[Component]):
    """Applies `patch` on the first install; `active` is the installed component, or None."""

    def __init__(self, patch: Callable[[], None]) -> None:
        self._patch = patch
        self._patched = False
        self._lock = threading.Lock()
        self.active: Component | None = None

    def install(self, component: Component) -> None:
        with self._lock:
            if not self._patched:
                self._patch()
                self._patched = True
            self.active = component

    def uninstall(self, component: Component) -> None:
        with self._lock:
            if self.active is component:
                self.active = None
