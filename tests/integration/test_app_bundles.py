"""Node and static bundles from the examples, and the bad inputs that stop a bake before Packer.

Real parts: npm against the registry (npm ci --omit=dev), apt against the Debian archive for the
image's release (the .debs of nodejs and nginx), the bundle's tarball. No region is needed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from webfleet.config import load_stack
from webfleet.errors import WebfleetError
from webfleet.paths import ProjectPaths
from webfleet.stages.bake import bundle_request
from webfleet.stages.bundle import BundleRequest, build_bundle
from webfleet.stages.render import render

pytestmark = [pytest.mark.integration, pytest.mark.runtime_minutes(0.5)]


def example(name: str, tmp_path: Path) -> tuple[BundleRequest, Path]:
    """The example copied (so a test may change it), its bundle request and build directory."""
    directory = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, directory, ignore=shutil.ignore_patterns(".webfleet"))
    stack = load_stack(directory / "webfleet.toml")
    paths = ProjectPaths(ROOT, directory / ".webfleet")
    return bundle_request(stack, paths, render(stack, paths)), paths.build_dir("local") / "bundle"


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
