"""scaffold.write: a new file appears whole, never in place of an existing one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from webfleet.scaffold.write import FileExistsRefusal, WriteError, write_new


def test_writes_a_new_file_with_the_users_mode_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "webfleet.toml"
    old_umask = os.umask(0o022)
    try:
        write_new(target, "a = 1\n")
    finally:
        os.umask(old_umask)
    assert target.read_text() == "a = 1\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["webfleet.toml"]


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling symlink"])
def test_refuses_anything_already_there(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "webfleet.toml"
    other = tmp_path / "other.toml"
    if kind == "file":
        target.write_text("mine\n")
    else:
        if kind == "symlink":
            other.write_text("mine\n")
        target.symlink_to(other)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(FileExistsRefusal, match="already exists; init never overwrites"):
        write_new(target, "new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if kind != "dangling symlink":
        assert target.read_text() == "mine\n"


def test_a_file_appearing_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "webfleet.toml"

    def someone_else_writes(candidate: Path) -> None:
        assert candidate.read_text() == "new\n"
        target.write_text("theirs\n")

    with pytest.raises(FileExistsRefusal):
        write_new(target, "new\n", check=someone_else_writes)
    assert target.read_text() == "theirs\n"
    assert [p.name for p in tmp_path.iterdir()] == ["webfleet.toml"]


def test_a_refusing_check_leaves_nothing(tmp_path: Path) -> None:
    def refuse(candidate: Path) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        write_new(tmp_path / "webfleet.toml", "x\n", check=refuse)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_explained(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="no such directory"):
        write_new(tmp_path / "nope" / "webfleet.toml", "x\n")
