"""`webfleet init` as its user runs it: in the app's directory, from the installed command."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.unit.scaffold.conftest import MakeApp
from webfleet.config import load_stack

WEBFLEET = ROOT / ".venv" / "bin" / "webfleet"
FLASK = "from flask import Flask\n\napp = Flask(__name__)\n"


def webfleet(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WEBFLEET, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


def test_init_writes_a_stack_file_and_never_overwrites_it(make_app: MakeApp) -> None:
    app_dir = make_app("Flask_Shop", {"app.py": FLASK, "requirements.txt": "flask\n"})

    first = webfleet(app_dir, "init")
    assert first.returncode == 0, first.stderr
    assert "wrote webfleet.toml for a Flask app" in first.stdout
    assert "gunicorn is not among the app's declared dependencies" in first.stdout
    stack = load_stack(app_dir / "webfleet.toml")
    assert stack.app.name == "flask-shop"
    assert stack.app.start == "gunicorn app:app --bind 0.0.0.0:$PORT --workers 2"
    written = (app_dir / "webfleet.toml").read_bytes()

    again = webfleet(app_dir, "init", "--port", "9000")
    assert again.returncode == 1
    assert "already exists; init never overwrites" in again.stderr
    assert "Traceback" not in again.stderr
    assert (app_dir / "webfleet.toml").read_bytes() == written

    other = webfleet(app_dir, "init", "--stack", "staging.toml", "--name", "shop-staging")
    assert other.returncode == 0, other.stderr
    assert load_stack(app_dir / "staging.toml").app.name == "shop-staging"


def test_init_in_an_unrecognised_directory_explains_and_writes_nothing(tmp_path: Path) -> None:
    result = webfleet(tmp_path, "init")
    assert result.returncode == 1
    assert "no app recognised" in result.stderr and "--runtime" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_help_names_its_options(tmp_path: Path) -> None:
    result = webfleet(tmp_path, "--help", "init")
    assert result.returncode == 0, result.stderr
    for option in ("--runtime", "--name", "--port", "--health-check-path", "--stack"):
        assert option in result.stdout
