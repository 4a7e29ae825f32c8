"""Put a new file in place whole or not at all, and never in place of an existing one."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from webfleet.errors import WebfleetError

# Filesystems without hard links: the file is created exclusively and written in place.
_NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV})


class FileExistsRefusal(WebfleetError):
    """The file to create is there already: it is left exactly as it was."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path} already exists; init never overwrites a file. Move it away, or pass "
            "--stack to write another file"
        )


class WriteError(WebfleetError):
    """The new file could not be written."""


def write_new(path: Path, text: str, check: Callable[[Path], object] | None = None) -> None:
    """Write text to path, which must not exist.

    The text goes to a temporary file next to it first (which `check` may inspect and refuse
    by raising), then is linked into place: the link fails, rather than replace it, if a file
    appeared there meanwhile.
    """
    if path.exists() or path.is_symlink():
        raise FileExistsRefusal(path)
    if not path.parent.is_dir():
        raise WriteError(f"{path.parent}: no such directory to write {path.name} into")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        _write_exclusive(temporary, text)
        if check is not None:
            check(temporary)
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise FileExistsRefusal(path) from None
        except OSError as error:
            if error.errno not in _NO_LINKS:
                raise
            _write_in_place(path, text)
        _sync_directory(path.parent)
    except OSError as error:
        raise WriteError(f"{path}: cannot write it ({error.strerror or error})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _write_in_place(path: Path, text: str) -> None:
    try:
        _write_exclusive(path, text)
    except FileExistsError:
        raise FileExistsRefusal(path) from None
    except BaseException:
        # Created by us a moment ago (O_EXCL), so ours to remove: no half-written file stays.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise


def _write_exclusive(path: Path, text: str) -> None:
    # 0o666 less the umask: the mode any new file of the user's gets.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
