"""The app bundle: the app, its dependencies and its Debian packages, for an offline install.

Instances (and the image builder) have no internet, so everything is resolved here and shipped in
`app-bundle.tar.gz`:
  bundle.json      what is in it (runtime, version, commit, wheels, packages)
  install-app.sh   installs it on the builder; smoke-check.sh tries the service once
  app/             app.source's files (node: with node_modules from `npm ci --omit=dev`)
  wheelhouse/      python: every wheel the app needs, for the image's Python
  debs/            app.packages (and nodejs or nginx) with their dependencies, for the image's
                   Debian release, as a flat apt repository
  config/          files the install puts in place (a static app's nginx.conf)
The bundle is cached by the hash of all that goes into it: an unchanged app is not rebuilt.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from webfleet.config import EnvironmentStack, Runtime
from webfleet.errors import WebfleetError
from webfleet.stages.bundle import node_deps, python_deps
from webfleet.stages.bundle.archive import pack_tree
from webfleet.stages.bundle.debs import DebianRelease, PackageIndex, image_release, sha256_of
from webfleet.stages.bundle.source import app_files, content_key, copy_files

BUNDLE_FILE = "app-bundle.tar.gz"
MANIFEST_FILE = "bundle.json"
WHEELHOUSE_DIR = "wheelhouse"
APP_DIR = "app"
DEBS_DIR = "debs"
CONFIG_DIR = "config"
# Raised when the layout or install contract changes, so older cached bundles are rebuilt.
BUNDLE_FORMAT = "2"
# The Debian package each runtime runs on, beside app.packages.
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {"node": ("nodejs",), "static": ("nginx",)}


@dataclass(frozen=True)
class BundleRequest:
    """What the bundle is built from: the stack's app section, resolved."""

    app_name: str
    runtime: Runtime
    source: Path
    where: str  # how errors name the app's directory: "app.source in <stack file>"
    release: DebianRelease
    packages: tuple[str, ...] = ()
    version: str | None = None
    build: str | None = None
    document_root: str = "."
    # Paths under source that are not the app's (webfleet's artifacts beside the stack file).
    exclude: tuple[Path, ...] = ()
    # Bundle path -> file on this machine, e.g. the install scripts and config/nginx.conf.
    files: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def of_stack(
        cls, stack: EnvironmentStack, files: Mapping[str, Path], exclude: Sequence[Path] = ()
    ) -> BundleRequest:
        app = stack.app
        base = stack.image.base_ami
        return cls(
            app_name=app.name,
            runtime=app.runtime,
            source=stack.app_source_dir,
            where=f"app.source in {stack.source}",
            release=image_release(base.name, base.architecture),
            packages=tuple(app.packages),
            version=app.version,
            build=app.build,
            document_root=app.document_root,
            exclude=tuple(exclude),
            files=files,
        )

    @property
    def all_packages(self) -> list[str]:
        """The Debian packages to install: the runtime's and app.packages, once each."""
        wanted = RUNTIME_PACKAGES.get(self.runtime, ()) + self.packages
        return sorted(set(wanted))


@dataclass(frozen=True)
class Bundle:
    """A built bundle and what bundle.json says about it."""

    path: Path
    tree: Path  # the unpacked bundle, as the tarball holds it
    manifest: Path
    name: str
    version: str
    commit: str
    runtime: str
    wheels: dict[str, str]  # wheel file name -> sha256
    debs: dict[str, str]  # .deb file name -> sha256
    cached: bool  # nothing changed since the last build: reused as it was

    @property
    def wheelhouse(self) -> Path:
        return self.tree / WHEELHOUSE_DIR


def build_bundle(
    request: BundleRequest, out_dir: Path, on_progress: Callable[[str], None] = lambda _: None
) -> Bundle:
    """Build (or reuse) the bundle of the app into out_dir."""
    source = request.source
    if not source.is_dir():
        raise WebfleetError(f"{request.where}: {source} is not a directory (relative to the stack)")
    for name, path in request.files.items():
        if not path.is_file():
            raise WebfleetError(f"{path} ({name} of the bundle) is missing")
    if request.build is not None:
        on_progress(f"app.build: {request.build}")
        run_app_build(request.build, source)
    project = _check_project(request)
    files = app_files(source, request.runtime, exclude=request.exclude)
    commit = _git_commit(source)
    key = content_key(source, files, [*_key_inputs(request), f"commit {commit}"])
    out_dir.mkdir(parents=True, exist_ok=True)
    cached = _cached(out_dir, key)
    if cached is not None:
        return cached

    index = PackageIndex(request.release) if request.all_packages else None
    if index is not None:
        on_progress(f"Debian {request.release.suite} packages: {', '.join(request.all_packages)}")
        index.update()
    if request.runtime == "node" and isinstance(project, node_deps.NodeProject):
        assert index is not None  # node always needs Debian's nodejs
        _check_node_engines(project, index, request.release)

    with tempfile.TemporaryDirectory(prefix=".staging-", dir=out_dir) as tmp:
        tree = Path(tmp) / "tree"
        app = tree / APP_DIR
        copy_files(source, files, app)
        wheels: dict[str, str] = {}
        version = request.version
        if isinstance(project, python_deps.PythonProject):
            on_progress("wheels for the image's Python (pip wheel)")
            python_deps.build_wheelhouse(app, project, tree / WHEELHOUSE_DIR)
            _remove_build_leftovers(app)
            wheels = {p.name: sha256_of(p) for p in sorted((tree / WHEELHOUSE_DIR).glob("*.whl"))}
            if version is None and project.name is not None:
                version = python_deps.wheel_version(project.name, list(wheels))
        elif isinstance(project, node_deps.NodeProject):
            on_progress("node_modules (npm ci --omit=dev)")
            node_deps.install_modules(app)
            version = version or project.version
        debs: dict[str, str] = {}
        if index is not None:
            downloaded = index.download(request.all_packages, tree / DEBS_DIR)
            debs = {deb.filename: deb.sha256 for deb in downloaded}
        for name, path in sorted(request.files.items()):
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        manifest = {
            "app": request.app_name,
            "name": (project.name if project is not None else None) or request.app_name,
            "version": version or _version_from_commit(commit),
            "commit": commit,
            "runtime": request.runtime,
            "packages": request.all_packages,
            "wheels": wheels,
            "debs": debs,
            "key": key,
        }
        (tree / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        pack_tree(tree, Path(tmp) / BUNDLE_FILE)
        # Swap in whole: an interrupted build never leaves a half-made bundle behind.
        shutil.rmtree(out_dir / "tree", ignore_errors=True)
        tree.rename(out_dir / "tree")
        (Path(tmp) / BUNDLE_FILE).replace(out_dir / BUNDLE_FILE)
    return _read(out_dir, cached=False)


def run_app_build(command: str, source: Path) -> None:
    """app.build, run by /bin/sh in app.source; its failure stops the bake with its output."""
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise WebfleetError(
            f"app.build ({command!r}) failed with exit code {result.returncode} in {source}; "
            f"nothing was baked. Its last output:\n{tail or '(none)'}"
        )


def _check_project(
    request: BundleRequest,
) -> python_deps.PythonProject | node_deps.NodeProject | None:
    source, where = request.source, request.where
    if request.runtime == "python":
        return python_deps.python_project(source, where)
    if request.runtime == "node":
        return node_deps.node_project(source, where)
    if request.runtime == "static":
        root = (source / request.document_root).resolve()
        if not root.is_dir():
            raise WebfleetError(
                f"app.document_root: {root} is not a directory (relative to app.source"
                + (", after app.build)" if request.build else ")")
            )
    return None


def _check_node_engines(
    project: node_deps.NodeProject, index: PackageIndex, release: DebianRelease
) -> None:
    debian_version = index.candidate_version("nodejs")
    if debian_version is None:
        raise WebfleetError(f"Debian {release.suite} has no nodejs package for a node app")
    node_deps.check_engines(project, node_deps.upstream_version(debian_version), release.suite)


def _key_inputs(request: BundleRequest) -> list[str]:
    inputs = [
        f"format {BUNDLE_FORMAT}",
        f"runtime {request.runtime}",
        f"release {request.release.suite} {request.release.architecture}",
        f"packages {' '.join(request.all_packages)}",
        f"version {request.version}",
        f"document_root {request.document_root}",
    ]
    if request.runtime == "python":
        inputs.append(f"python {sys.version_info[:2]}")
    for name, path in sorted(request.files.items()):
        inputs.append(f"file {name} {sha256_of(path)}")
    return inputs


def _cached(out_dir: Path, key: str) -> Bundle | None:
    manifest = out_dir / "tree" / MANIFEST_FILE
    try:
        recorded = json.loads(manifest.read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None
    if recorded != key or not (out_dir / BUNDLE_FILE).is_file():
        return None
    return _read(out_dir, cached=True)


def _read(out_dir: Path, *, cached: bool) -> Bundle:
    tree = out_dir / "tree"
    data = json.loads((tree / MANIFEST_FILE).read_text())
    return Bundle(
        path=out_dir / BUNDLE_FILE,
        tree=tree,
        manifest=tree / MANIFEST_FILE,
        name=data["name"],
        version=data["version"],
        commit=data["commit"],
        runtime=data["runtime"],
        wheels=data["wheels"],
        debs=data["debs"],
        cached=cached,
    )


def _version_from_commit(commit: str) -> str:
    return commit[:12] if commit != "unknown" else "unversioned"


def _remove_build_leftovers(app: Path) -> None:
    # pip builds local projects in place: build/ and *.egg-info are not the app's files.
    for leftover in [app / "build", *app.rglob("*.egg-info")]:
        if leftover.is_dir():
            shutil.rmtree(leftover)


def _git_commit(app_dir: Path) -> str:
    """The last commit that touched the app dir, or "unknown" outside git (or before a commit)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(app_dir), "log", "-1", "--format=%H", "--", "."],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return "unknown"
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else "unknown"
