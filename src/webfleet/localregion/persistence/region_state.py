"""The region's state file: written while the daemon runs, read by the next one after a kill.

Every second the saver pickles moto's records together with what the region's components keep
of their own (which machine is which instance, each balancer's address and health) and, when that
changed, replaces <state_dir>/region-state.pickle. A daemon that starts and finds the file
restores the records before any component starts, and each component adopts what still runs
(machines, HAProxy, metadata servers) instead of removing it, as AWS keeps a region's resources
whatever happens to one of its API hosts. A clean stop (`down`) removes the file with everything
else; a file that does not load is set aside and the region starts empty.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from webfleet.localregion.persistence import moto_state
from webfleet.localregion.runtime.periodic import Periodic

log = logging.getLogger(__name__)

SAVE_SECONDS = 1.0
_WRITE_SAVE_ATTEMPTS = 3
STATE_FILE = "region-state.pickle"
# Changes when what the file holds changes shape: an older file is then not loaded.
FORMAT = 1


class Persistent(Protocol):
    """A component whose own state survives a daemon restart."""

    name: str

    def snapshot(self) -> object:
        """What to keep (may hold moto's records: they stay the same objects when loaded)."""
        ...

    def restore(self, state: object) -> None:
        """Called before start() with what snapshot() returned in the previous daemon."""
        ...


def state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def _partial(path: Path) -> Path:
    return path.with_suffix(".partial")


def _set_aside(path: Path) -> Path:
    return path.with_suffix(".unreadable")


def _restored_marker(path: Path) -> Path:
    return path.with_suffix(".restored")


@dataclass(frozen=True)
class Restored:
    """What the running daemon restored: the records a killed one saved (`local.status`)."""

    saved_at: float  # seconds since the epoch: when the killed daemon last saved
    restored_at: float


def restored_by_running_daemon(state_dir: Path, started_at: float) -> Restored | None:
    """The running daemon's restore, if it restored (a marker older than it is a former's)."""
    try:
        data = json.loads(_restored_marker(state_file(state_dir)).read_text(encoding="utf-8"))
        restored = Restored(float(data["saved_at"]), float(data["restored_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return restored if restored.restored_at >= started_at else None


def state_files(state_dir: Path) -> tuple[Path, ...]:
    """Every file the saver or loader may leave: the state, one being written, one set aside,
    the note that it was restored."""
    path = state_file(state_dir)
    return path, _partial(path), _set_aside(path), _restored_marker(path)


@dataclass
class _Phase:
    """One of SavedRegion's two region components."""

    name: str
    start: Callable[[], None]
    stop: Callable[[], None]


class SavedRegion:
    """Loads the previous daemon's state (`loader`) and saves this one's (`saver`)."""

    def __init__(self, state_dir: Path, components: list[Persistent]) -> None:
        self.path = state_file(state_dir)
        self.components = components
        self.restored = False
        self._digest = b""
        self._failures = 0
        self._saves = Periodic("saving region state", SAVE_SECONDS, self.save)
        self._saving = threading.Lock()  # request threads and the periodic save
        self._stopped = False

    def loader(self) -> _Phase:
        """The component that restores the state: first of all."""
        return _Phase("saved state", self.load, lambda: None)

    def saver(self) -> _Phase:
        """The component that saves it: last, once every other one runs."""
        return _Phase("state saver", self.start_saving, self.stop_saving)

    def load(self) -> None:
        _restored_marker(self.path).unlink(missing_ok=True)
        if not self.path.exists():
            return
        started = time.monotonic()
        saved_at = self.path.stat().st_mtime
        try:
            saved = moto_state.loads(self.path.read_bytes())
            if not isinstance(saved, dict) or saved.get("format") != FORMAT:
                raise ValueError(f"not a state file of format {FORMAT}")
            count = moto_state.install_backends(saved["moto"])
        except Exception as error:  # any unreadable file: start empty, keep it for a look
            aside = _set_aside(self.path)
            self.path.replace(aside)
            log.error("region state %s does not load (%s): starting empty", aside, error)
            return
        for component in self.components:
            component.restore(saved["components"].get(component.name))
        self.restored = True
        _restored_marker(self.path).write_text(
            json.dumps({"saved_at": saved_at, "restored_at": time.time()}) + "\n",
            encoding="utf-8",
        )
        log.info(
            "restored the previous daemon's records (%d backends) in %.2f s",
            count,
            time.monotonic() - started,
        )

    def save_answered_write(self) -> None:
        """Before a write's answer leaves (api/durable_writes.py); tried again while another
        request changes records under the pickler."""
        for _ in range(_WRITE_SAVE_ATTEMPTS):
            if self.save():
                return

    def save(self) -> bool:
        """Write the state if it changed since the last save; False if it could not be read."""
        with self._saving:
            # Once stopped, the file is gone for good: a clean stop leaves nothing to restore.
            return self._stopped or self._save()

    def _save(self) -> bool:
        try:
            data = moto_state.dumps(
                {
                    "format": FORMAT,
                    "moto": moto_state.moto_backends(),
                    "components": {c.name: c.snapshot() for c in self.components},
                }
            )
        except (RuntimeError, pickle.PicklingError, TypeError, AttributeError) as error:
            # RuntimeError: a record changed while it was read (the next second tries again).
            self._failures += 1
            if self._failures in (3, 60):
                log.warning("region state not saved %d times in a row: %s", self._failures, error)
            return False
        self._failures = 0
        digest = hashlib.sha256(data).digest()
        if digest == self._digest:
            return True
        partial = _partial(self.path)
        partial.touch(mode=0o600)
        partial.write_bytes(data)
        partial.replace(self.path)
        self._digest = digest
        return True

    def start_saving(self) -> None:
        self.save()
        self._saves.start()

    def stop_saving(self) -> None:
        self._saves.stop()
        # A clean stop removes every machine and balancer: nothing is left to restore.
        with self._saving:
            self._stopped = True
            self.path.unlink(missing_ok=True)
