"""Node and static bundles from the examples, an ASGI app and a binary one, and the bad inputs
that stop a bake before Packer.

Real parts: npm against the registry (npm ci --omit=dev), pip against PyPI, apt against the
Debian archive for the image's release (the .debs of nodejs and nginx), the bundle's tarball, an
offline install and a real uvicorn. No region is needed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from webfleet.config import Runtime, load_stack
from webfleet.errors import WebfleetError
from webfleet.localregion.runtime.ports import free_port
from webfleet.paths import ProjectPaths
from webfleet.stages.bake import bundle_request
from webfleet.stages.bundle import BundleRequest, build_bundle
from webfleet.stages.bundle.debs import image_release
from webfleet.stages.render import render

pytestmark = [pytest.mark.integration, pytest.mark.runtime_minutes(1.5)]


def example(name: str, tmp_path: Path) -> tuple[BundleRequest, Path]:
    """The example copied (so a test may change it), its bundle request and build directory."""
    directory = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, directory, ignore=shutil.ignore_patterns(".webfleet"))
    stack = load_stack(directory / "webfleet.toml")
    paths = ProjectPaths(ROOT, directory / ".webfleet")
    return bundle_request(stack, paths, render(stack, paths)), paths.build_dir("local") / "bundle"


def own_app(name: str, runtime: Runtime, source: Path, version: str | None = None) -> BundleRequest:
    """A bundle request for an app made by the test, on Debian 12 amd64."""
    return BundleRequest(
        app_name=name,
        runtime=runtime,
        source=source,
        where="app.source in webfleet.toml",
        release=image_release("debian-12-amd64-*", "x86_64"),
        version=version,
    )


def members(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        return set(tar.getnames())


def test_node_bundle_ships_node_modules_and_debians_nodejs(tmp_path: Path) -> None:
    request, out = example("node", tmp_path)
    bundle = build_bundle(request, out)
    names = members(bundle.path)
    assert "app/server.js" in names and "app/node_modules/express/package.json" in names
    assert "app/node_modules/.package-lock.json" not in names  # differs run to run
    assert any(name.startswith("nodejs_18.") for name in bundle.debs), bundle.debs
    assert {"debs/Packages", "debs/Release"} <= names
    manifest = json.loads(bundle.manifest.read_text())
    assert (manifest["runtime"], manifest["packages"]) == ("node", ["nodejs"])
    assert (bundle.name, bundle.version) == ("node-api", "1.0.0")  # package.json's
    # Nothing changed: reused as it was, the same bytes.
    before = bundle.path.read_bytes()
    again = build_bundle(request, out)
    assert again.cached and again.path.read_bytes() == before


def test_static_bundle_ships_the_site_nginx_and_its_config(tmp_path: Path) -> None:
    request, out = example("static", tmp_path)
    bundle = build_bundle(request, out)
    names = members(bundle.path)
    assert {"app/index.html", "app/style.css", "config/nginx.conf"} <= names
    assert "app/webfleet.toml" not in names  # app.source is public/: the stack stays private
    assert any(name.startswith("nginx_") for name in bundle.debs), bundle.debs
    assert not bundle.wheels


def test_engines_the_image_cannot_satisfy_stop_the_bundle(tmp_path: Path) -> None:
    request, out = example("node", tmp_path)
    package_json = request.source / "package.json"
    package = json.loads(package_json.read_text())
    package["engines"] = {"node": ">=20"}
    package_json.write_text(json.dumps(package))
    with pytest.raises(WebfleetError) as error:
        build_bundle(request, out)
    message = str(error.value)
    assert "engines.node is '>=20'" in message and "Node.js 18." in message
    assert "bookworm" in message
    assert not (out / "app-bundle.tar.gz").exists()


def test_a_node_app_without_its_lock_file_is_refused(tmp_path: Path) -> None:
    request, out = example("node", tmp_path)
    (request.source / "package-lock.json").unlink()
    with pytest.raises(WebfleetError, match=r"app\.source in .*: .* has no package-lock\.json"):
        build_bundle(request, out)


def test_a_package_the_release_lacks_is_named_before_anything_is_built(tmp_path: Path) -> None:
    request, out = example("static", tmp_path)
    with_unknown = dataclasses.replace(request, packages=("libpq5", "webfleet-no-such-package"))
    with pytest.raises(WebfleetError) as error:
        build_bundle(with_unknown, out)
    message = str(error.value)
    assert "app.packages" in message and "webfleet-no-such-package" in message
    assert "'libpq5'" not in message  # it exists: only the unknown one is named
    assert not (out / "app-bundle.tar.gz").exists()


def test_a_failing_app_build_stops_the_bundle_with_its_output(tmp_path: Path) -> None:
    request, out = example("static", tmp_path)
    failing = dataclasses.replace(request, build="echo 'vite: command not found' >&2; exit 127")
    with pytest.raises(WebfleetError) as error:
        build_bundle(failing, out)
    assert "exit code 127" in str(error.value) and "vite: command not found" in str(error.value)


def _get_when_up(url: str, process: subprocess.Popen[bytes]) -> bytes:
    deadline = time.monotonic() + 30
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        try:
            with opener.open(url, timeout=3) as response:
                body: bytes = response.read()
                return body
        except OSError:
            assert process.poll() is None, "the server exited"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_an_asgi_app_from_requirements_runs_offline_from_its_wheelhouse(tmp_path: Path) -> None:
    # A FastAPI app as users write it: main.py and an unpinned requirements.txt.
    app = tmp_path / "api"
    app.mkdir()
    (app / "main.py").write_text(
        "from fastapi import FastAPI\n\napp = FastAPI()\n\n\n"
        '@app.get("/healthz")\ndef health() -> dict[str, bool]:\n    return {"ok": True}\n'
    )
    (app / "requirements.txt").write_text("fastapi\nuvicorn\n")
    bundle = build_bundle(own_app("api", "python", app), tmp_path / "bundle")
    assert {wheel.split("-")[0] for wheel in bundle.wheels} >= {"fastapi", "uvicorn", "starlette"}
    # As install-app.sh does it: a venv with exactly the wheelhouse, no index.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    offline = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--no-deps",
         "--quiet", *map(str, sorted(bundle.wheelhouse.glob("*.whl")))],
        check=True, env={**offline, "PIP_CONFIG_FILE": os.devnull},
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "uvicorn"), "main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=bundle.tree / "app",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert json.loads(_get_when_up(f"http://127.0.0.1:{port}/healthz", server)) == {"ok": True}
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_binary_app_keeps_its_executable_and_links(tmp_path: Path) -> None:
    app = tmp_path / "server"
    (app / "bin").mkdir(parents=True)
    executable = app / "bin" / "server"
    executable.write_text('#!/bin/sh\nexec python3 -m http.server "$PORT"\n')
    executable.chmod(0o755)
    (app / "config.yaml").write_text("greeting: hi\n")
    (app / "server").symlink_to("bin/server")
    bundle = build_bundle(own_app("server", "binary", app, version="2.1.0"), tmp_path / "bundle")
    assert (bundle.version, bundle.wheels, bundle.debs) == ("2.1.0", {}, {})
    with tarfile.open(bundle.path) as tar:
        entries = {member.name: member for member in tar.getmembers()}
    assert entries["app/bin/server"].mode == 0o755 and entries["app/config.yaml"].mode == 0o644
    assert entries["app/server"].issym() and entries["app/server"].linkname == "bin/server"
