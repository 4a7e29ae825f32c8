"""A region component's background thread that does one job every few seconds until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs `job` every `period` seconds on a daemon thread; a failing run is logged, not fatal."""

    def __init__(self, name: str, period: float, job: Callable[[], object]) -> None:
        self.name = name
        self.period = period
        self.job = job
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.job()
            except Exception:
                log.exception("%s failed", self.name)
