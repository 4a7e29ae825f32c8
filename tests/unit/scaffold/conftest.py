"""Little app directories, written file by file into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

MakeApp = Callable[..., Path]


@pytest.fixture
def make_app(tmp_path: Path) -> MakeApp:
    """make_app("name", {"relative/path": "text", ...}): a directory holding those files."""

    def make(name: str = "myapp", files: dict[str, str] | None = None) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        for relative, text in (files or {}).items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return directory

    return make
