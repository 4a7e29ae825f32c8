"""scaffold.create: the stack file init writes validates for every runtime, and an existing file
is never touched."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.unit.scaffold.conftest import MakeApp
from webfleet.config import load_stack
from webfleet.scaffold import create
from webfleet.scaffold.create import (
    InitOptionError,
    InitOptions,
    InvalidStackWritten,
    create_stack_file,
)
from webfleet.scaffold.detect import DetectError
from webfleet.scaffold.write import FileExistsRefusal

FLASK = "from flask import Flask\napp = Flask(__name__)\n"
APPS: dict[str, dict[str, str]] = {
    "python": {"requirements.txt": "flask\ngunicorn\n", "app.py": FLASK},
    "node": {
        "package.json": json.dumps({"name": "n", "scripts": {"build": "tsc"}}),
        "package-lock.json": "{}",
        "server.js": "",
    },
    "static": {"index.html": "<p>hi</p>"},
    "binary": {"server": ""},
}


def create_in(app_dir: Path, stack: str = "webfleet.toml", **options: Any) -> create.Created:
    return create_stack_file(app_dir, Path(stack), InitOptions(**options), ROOT)


@pytest.mark.parametrize("runtime", sorted(APPS))
def test_the_written_file_validates_for_each_runtime(make_app: MakeApp, runtime: str) -> None:
    app_dir = make_app("shop", APPS[runtime])
    created = create_in(app_dir, runtime="binary" if runtime == "binary" else None)
    stack = load_stack(app_dir / "webfleet.toml")
    assert created.path == app_dir / "webfleet.toml"
    assert stack.app.runtime == runtime
    assert stack.app.name == "shop"
    assert stack.app_source_dir == app_dir.resolve()
    assert (stack.app.start is None) == (runtime == "static")
    assert stack.image.base_ami.name == "debian-12-amd64-*"
    assert stack.image.base_ami.owners == ["136693071363"]
    assert [s.zone for s in stack.network.public_subnets] == ["a", "b"]
    assert stack.environment.kind == "local"
    assert stack.health_check_path == ("/" if runtime == "static" else "/healthz")
    raw = tomllib.loads(created.path.read_text())
    assert set(raw) == {
        "tags",
        "app",
        "image",
        "network",
        "load_balancer",
        "asg",
        "scaling",
        "environments",
    }
    assert "health_check" in raw["load_balancer"]


def test_every_section_is_commented(make_app: MakeApp) -> None:
    created = create_in(make_app("shop", APPS["python"]))
    lines = created.path.read_text().splitlines()
    for index, line in enumerate(lines):
        if line.startswith("[") and line not in ("[image.base_ami]",):
            assert lines[index - 1].startswith("#"), line


def test_never_overwrites_an_existing_file(make_app: MakeApp) -> None:
    app_dir = make_app("shop", APPS["python"])
    existing = app_dir / "webfleet.toml"
    existing.write_text("# mine, not even valid\n[app\n")
    with pytest.raises(FileExistsRefusal, match="already exists"):
        create_in(app_dir)
    assert existing.read_text() == "# mine, not even valid\n[app\n"
    assert sorted(p.name for p in app_dir.iterdir()) == [
        "app.py",
        "requirements.txt",
        "webfleet.toml",
    ]


def test_directory_name_is_made_valid_and_reported(make_app: MakeApp) -> None:
    created = create_in(make_app("My_Shop.v2", APPS["static"]))
    assert created.stack.app.name == "my-shop-v2"
    assert created.renamed_from == "My_Shop.v2"
    assert create_in(make_app("shop", APPS["static"])).renamed_from is None


def test_options_replace_the_proposal(make_app: MakeApp) -> None:
    created = create_in(
        make_app("shop", APPS["python"]), name="api", port="9000", health_check_path="/up"
    )
    app = created.stack.app
    assert (app.name, app.port, app.health_check_path) == ("api", 9000, "/up")
    assert "CHECK: point this at a route" not in created.path.read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "My App"}, "--name 'My App': must be lowercase"),
        ({"port": "http"}, "--port 'http'"),
        ({"port": "70000"}, "--port 70000"),
        ({"health_check_path": "healthz"}, "--health-check-path 'healthz'"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(
    make_app: MakeApp, options: dict[str, str], message: str
) -> None:
    app_dir = make_app("shop", APPS["python"])
    with pytest.raises(InitOptionError, match=message):
        create_in(app_dir, **options)
    assert not (app_dir / "webfleet.toml").exists()


def test_stack_file_elsewhere_points_back_at_the_app(make_app: MakeApp, tmp_path: Path) -> None:
    app_dir = make_app("shop", APPS["node"])
    (tmp_path / "deploy").mkdir()
    created = create_in(app_dir, stack=str(tmp_path / "deploy" / "shop.toml"))
    assert created.stack.app.source == "../shop"
    assert created.stack.app_source_dir == app_dir.resolve()
    assert '# build = "npm run build"' in created.path.read_text()


def test_static_site_publishing_its_stack_file_is_warned_about(make_app: MakeApp) -> None:
    text = create_in(make_app("site", APPS["static"])).path.read_text()
    assert "CHECK: nginx serves '.' whole, webfleet.toml included" in text
    text = create_in(make_app("other", {"public/index.html": ""})).path.read_text()
    assert 'document_root = "public"' in text and "included" not in text


def test_unrecognised_directory_writes_nothing(make_app: MakeApp) -> None:
    app_dir = make_app("empty")
    with pytest.raises(DetectError, match="--runtime"):
        create_in(app_dir)
    assert list(app_dir.iterdir()) == []


def test_an_invalid_rendering_is_reported_as_a_bug_and_not_written(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_dir = make_app("shop", APPS["python"])
    monkeypatch.setattr(create, "render", lambda draft, root: "[app]\nname = 'Bad Name'\n")
    with pytest.raises(InvalidStackWritten, match="a bug in webfleet init") as raised:
        create_in(app_dir)
    assert "nothing was written" in str(raised.value)
    assert sorted(p.name for p in app_dir.iterdir()) == ["app.py", "requirements.txt"]
