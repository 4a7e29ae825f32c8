"""The bundle's tarball: fixed order, owners, modes and times, so equal inputs give equal bytes."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

# Tar timestamps (1980-01-01, the earliest zip allows) so rebuilds give the same bytes.
FIXED_EPOCH = 315532800


def pack_tree(root: Path, path: Path) -> None:
    """Write every file, symlink and directory under root into the gzipped tarball at path."""
    partial = path.with_name(path.name + ".partial")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
            info = tarfile.TarInfo(member.relative_to(root).as_posix())
            info.mtime, info.uid, info.gid = FIXED_EPOCH, 0, 0
            if member.is_symlink():
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, str(member.readlink()), 0o777
                tar.addfile(info)
            elif member.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                executable = member.stat().st_mode & 0o111
                info.size, info.mode = member.stat().st_size, 0o755 if executable else 0o644
                with member.open("rb") as file:
                    tar.addfile(info, file)
    partial.replace(path)
