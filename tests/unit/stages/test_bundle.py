"""webfleet.stages.bundle: the sample app's real bundle (python, no Debian packages), and an
offline install from it as install-app.sh does it. Node and static bundles, which need the Debian
archive and the npm registry, are in tests/integration/test_app_bundles.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from webfleet.errors import WebfleetError
from webfleet.localregion.runtime.ports import free_port
from webfleet.stages.bundle import Bundle, BundleRequest, build_bundle
from webfleet.stages.bundle.debs import DebianRelease

APP_DIR = ROOT / "examples" / "sample"
SCRIPTS = ROOT / "packer" / "scripts"
INSTALL_SCRIPT = SCRIPTS / "install-app.sh"
BOOKWORM = DebianRelease("bookworm", "12", "amd64")


def request(app_dir: Path = APP_DIR, **changes: Any) -> BundleRequest:
    files = {
        name: SCRIPTS / name for name in ("install-app.sh", "install-debs.sh", "smoke-check.sh")
    }
    sample = BundleRequest(
        app_name="webfleet-demo",
        runtime="python",
        source=app_dir,
        where="app.source in webfleet.toml",
        release=BOOKWORM,
        files=files,
    )
    return dataclasses.replace(sample, **changes)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return build_bundle(request(), tmp_path_factory.mktemp("bundle"))


def _offline_env() -> dict[str, str]:
    # As on an instance: no pip config, no index, no find-links but the wheelhouse.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}


@pytest.fixture(scope="module")
def venv(built: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the app installed as install-app.sh does it: offline, the whole wheelhouse."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--no-deps",
         "--disable-pip-version-check", "--no-cache-dir", "--quiet",
         *map(str, sorted(built.wheelhouse.glob("*.whl")))],
        check=True, env=_offline_env(),
    )  # fmt: skip
    return venv


def members_text(tar: tarfile.TarFile, name: str) -> str:
    member = tar.extractfile(name)
    assert member is not None
    return member.read().decode()


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


def test_tarball_holds_app_wheelhouse_manifest_and_scripts(built: Bundle) -> None:
    with tarfile.open(built.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert {"bundle.json", "install-app.sh", "smoke-check.sh"} <= set(members)
        assert {"app/pyproject.toml", "app/src/webfleet_app/wsgi.py"} <= set(members)
        assert not [name for name in members if "__pycache__" in name or "egg-info" in name]
        assert json.loads(members_text(tar, "bundle.json"))["runtime"] == "python"
        assert {f"wheelhouse/{n}" for n in built.wheels} <= set(members)
        assert members["install-app.sh"].mode & 0o111
        script = tar.extractfile("install-app.sh")
        assert script is not None and script.read() == INSTALL_SCRIPT.read_bytes()
        assert all(m.uid == 0 and m.uname == "" for m in members.values())


def test_rebuild_reuses_wheelhouse_and_gives_same_bytes(built: Bundle) -> None:
    before = built.path.read_bytes()
    started = time.monotonic()
    again = build_bundle(request(), built.path.parent)
    assert again.cached
    assert again.wheels == built.wheels
    assert again.path.read_bytes() == before
    assert time.monotonic() - started < 2


def test_changed_source_rebuilds(built: Bundle, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path / "out"
    first = build_bundle(request(app), out)
    assert not first.cached and build_bundle(request(app), out).cached
    init = app / "src" / "webfleet_app" / "__init__.py"
    init.write_text(init.read_text() + "# changed\n")
    assert not build_bundle(request(app), out).cached
    # A new Debian release or app.version is a new bundle too, the same files or not.
    assert not build_bundle(request(app, version="1.0.1"), out).cached


def test_app_build_runs_first_and_its_failure_stops_the_bundle(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = build_bundle(request(app, build="echo built > generated.txt"), tmp_path / "out")
    assert (built.tree / "app" / "generated.txt").read_text() == "built\n"
    with pytest.raises(WebfleetError) as error:
        build_bundle(request(app, build="echo compiling; exit 3"), tmp_path / "out2")
    message = str(error.value)
    assert "app.build" in message and "exit code 3" in message and "compiling" in message
    assert not (tmp_path / "out2").exists()


def test_requirements_txt_app_ships_its_files_and_pinned_wheels(
    built: Bundle, tmp_path: Path
) -> None:
    # A requirements.txt app (no pyproject): its code is shipped as files, its pins as wheels.
    app = tmp_path / "flaskless"
    app.mkdir()
    (app / "server.py").write_text("print('hello')\n")
    gunicorn = next(name for name in built.wheels if name.startswith("gunicorn-"))
    version = gunicorn.split("-")[1]
    (app / "requirements.txt").write_text(f"gunicorn=={version}\n")
    with pytest.MonkeyPatch.context() as patch:
        # Offline: the wheel comes from the sample's wheelhouse, as from an index.
        for key, value in _offline_env().items():
            patch.setenv(key, value)
        patch.setenv("PIP_FIND_LINKS", str(built.wheelhouse))
        bundle = build_bundle(request(app, app_name="flaskless", version="0.3"), tmp_path / "out")
    assert (bundle.name, bundle.version) == ("flaskless", "0.3")
    # gunicorn and what it depends on: the sample's wheels but the sample's own.
    assert set(bundle.wheels) == {n for n in built.wheels if not n.startswith("webfleet_app-")}
    assert (bundle.tree / "app" / "server.py").is_file()


def test_python_app_without_dependency_file_names_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "uv.lock").write_text("")
    with pytest.raises(WebfleetError, match=r"has uv\.lock but no requirements\.txt.*uv export"):
        build_bundle(request(tmp_path / "app"), tmp_path / "out")


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
            build_bundle(request(app), tmp_path / "out")
    message = str(error.value)
    assert "setuptools" in message or "webfleet-no-such-dep" in message
    assert "package index" in message
    assert not (tmp_path / "out" / "tree").exists()


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


@pytest.fixture
def gunicorn(venv: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    # A closed loopback port as IMDS: the app must never reach for 169.254.169.254 here.
    env = {**_offline_env(), "APP_IMDS_URL": f"http://127.0.0.1:{free_port()}"}
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
