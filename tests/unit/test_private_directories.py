"""Directories that hold keys (build directories, the region's state): created, or tightened, to
their owner alone."""

from __future__ import annotations

from pathlib import Path

from webfleet.paths import private_directory


def test_a_new_directory_is_private_and_an_open_one_is_tightened(tmp_path: Path) -> None:
    new = private_directory(tmp_path / "state" / "region")
    assert new.is_dir() and new.stat().st_mode & 0o777 == 0o700
    open_one = tmp_path / "shared"
    open_one.mkdir(mode=0o755)
    open_one.chmod(0o755)
    assert private_directory(open_one).stat().st_mode & 0o777 == 0o700
