"""webfleet.stages.bundle: the real app bundle, and an offline install from it (install-app.sh)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from webfleet.errors import WebfleetError
from webfleet.stages import bundle as bundle_module
from webfleet.stages.bundle import Bundle, build_bundle

APP_DIR = ROOT / "app"
INSTALL_SCRIPT = ROOT / "packer" / "scripts" / "install-app.sh"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return build_bundle(APP_DIR, tmp_path_factory.mktemp("bundle"))


def _offline_env() -> dict[str, str]:
    # As on an instance: no pip config, no index, no find-links but the wheelhouse.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}


@pytest.fixture(scope="module")
def venv(built: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the app installed as install-app.sh does it: offline, from the wheelhouse."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--find-links",
         str(built.wheelhouse), "--disable-pip-version-check", "--no-cache-dir", "--quiet",
         "webfleet-app"],
        check=True, env=_offline_env(),
    )  # fmt: skip
    return venv


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundle_holds_app_and_gunicorn_wheels_with_their_hashes(built: Bundle) -> None:
    manifest = json.loads(built.manifest.read_text())
    assert (manifest["name"], manifest["version"]) == ("webfleet-app", "1.0.0")
    names = sorted(manifest["wheels"])
    assert any(n.startswith("webfleet_app-1.0.0-") for n in names)
    assert any(n.startswith("gunicorn-") for n in names)
    on_disk = {p.name: _sha256(p) for p in built.wheelhouse.glob("*.whl")}
    assert manifest["wheels"] == on_disk == built.wheels
    assert manifest["commit"] == built.commit
    assert built.commit == "unknown" or len(built.commit) == 40


def test_tarball_holds_wheelhouse_manifest_and_install_script(built: Bundle) -> None:
    with tarfile.open(built.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert {"bundle.json", "install-app.sh"} <= set(members)
        assert {f"wheelhouse/{n}" for n in built.wheels} <= set(members)
        assert members["install-app.sh"].mode & 0o111
        script = tar.extractfile("install-app.sh")
        assert script is not None and script.read() == INSTALL_SCRIPT.read_bytes()
        assert all(m.uid == 0 and m.uname == "" for m in members.values())


def test_rebuild_reuses_wheelhouse_and_gives_same_bytes(built: Bundle) -> None:
    before = built.path.read_bytes()
    started = time.monotonic()
    again = build_bundle(APP_DIR, built.path.parent)
    assert again.cached
    assert again.wheels == built.wheels
    assert again.path.read_bytes() == before
    assert time.monotonic() - started < 2


def test_changed_source_rebuilds(built: Bundle, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(built.wheelhouse, out / "wheelhouse")
    # Pretend the wheelhouse was built from these sources, then change them.
    key = bundle_module._source_key(app)
    (out / bundle_module.WHEELHOUSE_KEY_FILE).write_text(key)
    assert build_bundle(app, out).cached
    init = app / "src" / "webfleet_app" / "__init__.py"
    init.write_text(init.read_text() + "# changed\n")
    assert bundle_module._source_key(app) != key
    assert not bundle_module._wheelhouse_matches(out, bundle_module._source_key(app))


def test_build_leaves_the_app_dir_clean(built: Bundle) -> None:
    leftovers = [p for p in APP_DIR.rglob("*") if p.name == "build" or p.suffix == ".egg-info"]
    assert leftovers == []


def test_pip_failure_names_package_and_index(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pyproject = app / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'dependencies = ["gunicorn', 'dependencies = ["webfleet-no-such-dep==9.9", "gunicorn'
        )
    )
    env = _offline_env()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        # Offline on purpose: the missing package fails fast, whatever the index holds.
        patch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))
        with pytest.raises(WebfleetError) as error:
            build_bundle(app, tmp_path / "out")
    message = str(error.value)
    assert "setuptools" in message or "webfleet-no-such-dep" in message
    assert "package index" in message
    assert not (tmp_path / "out" / "wheelhouse").exists()


def test_install_script_is_valid_sh() -> None:
    subprocess.run(["sh", "-n", str(INSTALL_SCRIPT)], check=True)
    result = subprocess.run(["sh", str(INSTALL_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr


def test_installed_app_imports_offline(venv: Path) -> None:
    python = str(venv / "bin" / "python")
    code = "import webfleet_app, webfleet_app.wsgi; print(webfleet_app.__version__)"
    imported = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, env=_offline_env()
    )
    assert imported.stdout.strip() == "1.0.0"
    version = subprocess.run(
        [str(venv / "bin" / "gunicorn"), "--version"], capture_output=True, text=True, check=True
    )
    assert "gunicorn" in (version.stdout + version.stderr)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def gunicorn(venv: Path, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    # A closed loopback port as IMDS: the app must never reach for 169.254.169.254 here.
    env = {**_offline_env(), "APP_IMDS_URL": f"http://127.0.0.1:{_free_port()}"}
    process = subprocess.Popen(
        [str(venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "webfleet_app.wsgi:application"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def test_gunicorn_serves_health_check(gunicorn: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 20
    while True:
        try:
            with opener.open(gunicorn + "/healthz", timeout=5) as response:
                assert response.status == 200
                assert response.read() == b"ok"
                assert response.headers["X-App-Version"] == "1.0.0"
                assert response.headers["X-Instance-Id"] == "unknown"
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
