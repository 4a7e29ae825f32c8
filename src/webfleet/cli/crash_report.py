"""What a task does with an exception nobody explained (a bug, or a failure webfleet does not
know yet): one line saying what happened and where the whole traceback is, never a bare
traceback. `--debug` (invoke's core flag) prints the traceback too.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import traceback
from pathlib import Path

from webfleet.paths import state_home

CRASH_DIR_ENV = "WEBFLEET_CRASH_DIR"


def crash_dir() -> Path:
    """$WEBFLEET_CRASH_DIR, else the XDG state home's webfleet/crashes."""
    explicit = os.environ.get(CRASH_DIR_ENV)
    if explicit:
        return Path(explicit)
    return state_home() / "webfleet" / "crashes"


def write_crash_log(task: str, error: BaseException) -> Path | None:
    """The traceback in a file of its own; None if it cannot be written."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = crash_dir() / f"{stamp}-{task}-{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(error)))
    except OSError:
        return None
    return path


def debugging() -> bool:
    """Whether invoke's --debug (or INVOKE_DEBUG) turned debug logging on."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)


def crash_message(task: str, error: BaseException, log: Path | None) -> str:
    """The line the user sees."""
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    where = f"the traceback is in {log}" if log else "the traceback could not be saved"
    return (
        f"{task} failed unexpectedly ({what}); {where}. Re-run with --debug to print it, and "
        "please report it with that file."
    )
