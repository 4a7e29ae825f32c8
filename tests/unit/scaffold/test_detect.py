"""scaffold.detect: the runtime and the start, port and health path proposed for real little
app directories."""

from __future__ import annotations

import json
import os

import pytest

from tests.unit.scaffold.conftest import MakeApp
from webfleet.config import START_EXAMPLES
from webfleet.scaffold.detect import DetectError, detect
from webfleet.scaffold.node_app import PackageJsonError
from webfleet.scaffold.proposal import Proposal

FLASK_APP = """from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello"


@app.get("/healthz")
def healthz():
    return "ok"
"""

MANAGE_PY = """import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

DJANGO_WSGI = """import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
application = get_wsgi_application()
"""


def warnings(proposal: Proposal) -> str:
    return "\n".join(note.text for note in proposal.warnings)


def django_files(root_urls: str, **more: str) -> dict[str, str]:
    return {
        "manage.py": MANAGE_PY,
        "requirements.txt": "Django==5.1\ngunicorn==23.0.0\n",
        "shop/__init__.py": "",
        "shop/settings.py": 'ROOT_URLCONF = "shop.urls"\n',
        "shop/wsgi.py": DJANGO_WSGI,
        "shop/urls.py": root_urls,
        **more,
    }


def test_django_serves_the_settings_package_wsgi_with_gunicorn(make_app: MakeApp) -> None:
    urls = 'urlpatterns = [path("admin/", admin.site.urls), path("", views.home)]\n'
    proposal = detect(make_app(files=django_files(urls)))
    assert proposal.runtime == "python" and proposal.detected == "Django"
    assert proposal.start == (
        "gunicorn shop.wsgi --bind 0.0.0.0:$PORT --workers 2 --access-logfile -"
    )
    assert proposal.port == 8000
    # Nothing health-like among the routes: the default, with a note to point it elsewhere.
    assert proposal.health_check_path == "/healthz"
    assert "route your app really serves" in warnings(proposal)
    assert "gunicorn" not in warnings(proposal)


def test_django_health_path_follows_includes(make_app: MakeApp) -> None:
    root_urls = (
        "from django.urls import include, path\n"
        'urlpatterns = [path("admin/", admin.site.urls), path("api/v1/", include("api.urls"))]\n'
    )
    files = django_files(
        root_urls,
        **{
            "api/__init__.py": "",
            "api/urls.py": 'urlpatterns = [path("items/<int:pk>/", item), path("test/", test)]\n',
        },
    )
    proposal = detect(make_app(files=files))
    assert proposal.health_check_path == "/api/v1/test/"
    assert any("api/urls.py" in note.text for note in proposal.notes_about("health_check_path"))


def test_django_prefers_a_health_route_and_reads_re_path(make_app: MakeApp) -> None:
    urls = 'urlpatterns = [re_path(r"^status/$", status), path("healthz", ok)]\n'
    assert detect(make_app(files=django_files(urls))).health_check_path == "/healthz"
    urls = 'urlpatterns = [re_path(r"^status/$", status), path("x/<slug>/", page)]\n'
    assert detect(make_app("other", django_files(urls))).health_check_path == "/status/"


def test_flask_app_object_and_its_health_route(make_app: MakeApp) -> None:
    app_dir = make_app(files={"app.py": FLASK_APP, "requirements.txt": "flask\ngunicorn\n"})
    proposal = detect(app_dir)
    assert proposal.detected == "Flask"
    assert proposal.start == "gunicorn app:app --bind 0.0.0.0:$PORT --workers 2"
    assert (proposal.port, proposal.health_check_path) == (8000, "/healthz")
    assert proposal.warnings == []


def test_flask_factory_is_called_by_gunicorn(make_app: MakeApp) -> None:
    factory = "from flask import Flask\n\ndef create_app():\n    return Flask(__name__)\n"
    app_dir = make_app(files={"web/__init__.py": factory, "pyproject.toml": ""})
    assert detect(app_dir).start == "gunicorn 'web:create_app()' --bind 0.0.0.0:$PORT --workers 2"


def test_fastapi_runs_under_uvicorn(make_app: MakeApp) -> None:
    main = 'from fastapi import FastAPI\n\napi = FastAPI()\n\n@api.get("/ping")\ndef ping(): ...\n'
    requirements = "fastapi==0.115\nuvicorn[standard]>=0.30  # the server\n"
    proposal = detect(make_app(files={"main.py": main, "requirements.txt": requirements}))
    assert proposal.detected == "FastAPI"
    assert proposal.start == "uvicorn main:api --host 0.0.0.0 --port $PORT"
    assert proposal.health_check_path == "/ping"
    assert proposal.warnings == []


def test_requirements_src_layout_tells_the_server_where_to_import_from(
    make_app: MakeApp,
) -> None:
    main = "from fastapi import FastAPI\napp = FastAPI()\n"
    app_dir = make_app(files={"src/service/__init__.py": "", "src/service/main.py": main})
    (app_dir / "requirements.txt").write_text("fastapi\nuvicorn\n")
    start = detect(app_dir).start
    assert start == "uvicorn service.main:app --host 0.0.0.0 --port $PORT --app-dir src"


def test_plain_wsgi_module_of_an_installed_project(make_app: MakeApp) -> None:
    pyproject = '[project]\nname = "site"\nversion = "1"\ndependencies = ["gunicorn==23"]\n'
    wsgi = "def application(environ, start_response):\n    ...\n"
    app_dir = make_app(files={"pyproject.toml": pyproject, "src/site_app/__init__.py": ""})
    (app_dir / "src/site_app/wsgi.py").write_text(wsgi)
    proposal = detect(app_dir)
    assert proposal.start == (
        "gunicorn site_app.wsgi:application --bind 0.0.0.0:$PORT --workers 2 --access-logfile -"
    )
    assert "gunicorn" not in warnings(proposal)


@pytest.mark.parametrize(
    "files",
    [
        {"requirements.txt": "flask\n", "app.py": FLASK_APP},
        {
            "pyproject.toml": '[project]\nname = "x"\ndependencies = ["Flask"]\n',
            "app.py": FLASK_APP,
        },
    ],
)
def test_warns_when_the_server_is_not_a_dependency(
    make_app: MakeApp, files: dict[str, str]
) -> None:
    text = warnings(detect(make_app(files=files)))
    assert "gunicorn is not among the app's declared dependencies" in text


def test_dependencies_from_included_requirements_and_poetry(make_app: MakeApp) -> None:
    included = {
        "requirements.txt": "-r base.txt\n",
        "base.txt": "Gunicorn==23\n",
        "app.py": FLASK_APP,
    }
    assert "gunicorn" not in warnings(detect(make_app("included", included)))
    poetry = '[tool.poetry.dependencies]\npython = "^3.11"\ngunicorn = "^23"\n'
    assert "gunicorn" not in warnings(
        detect(make_app("poetry", {"pyproject.toml": poetry, "app.py": FLASK_APP}))
    )


def test_unknown_python_app_gets_a_placeholder_to_edit(make_app: MakeApp) -> None:
    proposal = detect(make_app(files={"requirements.txt": "requests\n", "job.py": "print(1)\n"}))
    assert proposal.start == START_EXAMPLES["python"]
    assert "replace this placeholder" in warnings(proposal)
    assert "gunicorn is not among" in warnings(proposal)


def package_json(**document: object) -> str:
    return json.dumps({"name": "api", "version": "1.0.0", **document})


def test_node_start_script_running_node_is_kept(make_app: MakeApp) -> None:
    server = "const port = process.env.PORT || 8080;\napp.get('/api/healthcheck', ok);\n"
    files = {
        "package.json": package_json(scripts={"start": "node server.js"}),
        "package-lock.json": "{}",
        "server.js": server,
    }
    proposal = detect(make_app(files=files))
    assert proposal.runtime == "node"
    assert proposal.start == "node server.js"
    assert proposal.port == 8080
    assert proposal.health_check_path == "/api/healthcheck"
    assert proposal.warnings == []


def test_node_never_proposes_npm_and_falls_back_to_main(make_app: MakeApp) -> None:
    files = {
        "package.json": package_json(main="src/app.js", scripts={"start": "npm run serve"}),
        "src/app.js": "http.createServer(handler).listen(process.env.PORT);\n",
        "index.js": "",
    }
    proposal = detect(make_app(files=files))
    assert proposal.start == "node src/app.js"
    assert proposal.port == 3000
    assert "is not `node <file>`" in warnings(proposal)
    assert "package-lock.json is required" in warnings(proposal)


@pytest.mark.parametrize(
    ("present", "start"), [("server.js", "node server.js"), ("index.js", "node index.js")]
)
def test_node_main_defaults(make_app: MakeApp, present: str, start: str) -> None:
    app_dir = make_app(files={"package.json": package_json(), present: ""})
    assert detect(app_dir).start == start


def test_node_without_a_main_file_gets_a_placeholder(make_app: MakeApp) -> None:
    proposal = detect(make_app(files={"package.json": package_json()}))
    assert proposal.start == START_EXAMPLES["node"]
    assert "no main file found" in warnings(proposal)


def test_node_build_script_is_suggested(make_app: MakeApp) -> None:
    files = {"package.json": package_json(scripts={"build": "tsc"}), "index.js": ""}
    assert detect(make_app(files=files)).build == "npm run build"


def test_broken_package_json_is_explained(make_app: MakeApp) -> None:
    with pytest.raises(PackageJsonError, match=r"package\.json: cannot read it as JSON"):
        detect(make_app(files={"package.json": "{ nope"}))


def test_index_html_alone_is_a_static_site(make_app: MakeApp) -> None:
    proposal = detect(make_app(files={"index.html": "<h1>hi</h1>"}))
    assert (proposal.runtime, proposal.start, proposal.port) == ("static", None, 80)
    assert (proposal.health_check_path, proposal.document_root) == ("/", ".")


def test_static_site_in_a_subdirectory(make_app: MakeApp) -> None:
    proposal = detect(make_app(files={"public/index.html": "", "README.md": ""}))
    assert (proposal.runtime, proposal.document_root) == ("static", "public")


def test_python_wins_over_an_index_html_and_mentions_node(make_app: MakeApp) -> None:
    files = {"requirements.txt": "", "index.html": "", "package.json": package_json()}
    proposal = detect(make_app(files=files))
    assert proposal.runtime == "python"
    assert any("--runtime node" in note.text for note in proposal.notes)


def test_unrecognised_directory_says_what_it_looked_for(make_app: MakeApp) -> None:
    with pytest.raises(DetectError) as raised:
        detect(make_app(files={"notes.txt": ""}))
    message = str(raised.value)
    for looked_for in ("pyproject.toml", "requirements.txt", "package.json", "index.html"):
        assert looked_for in message
    assert "--runtime" in message


def test_forced_runtime_without_its_files_warns(make_app: MakeApp) -> None:
    proposal = detect(make_app(files={"notes.txt": ""}), runtime="node")
    assert proposal.runtime == "node"
    assert "no package.json" in warnings(proposal)


def test_binary_runtime_uses_the_one_executable(make_app: MakeApp) -> None:
    app_dir = make_app(files={"server": "#!/bin/sh\n", "README": ""})
    os.chmod(app_dir / "server", 0o755)
    proposal = detect(app_dir, runtime="binary")
    assert (proposal.runtime, proposal.start) == ("binary", "./server")
    assert "$PORT" in warnings(proposal)


def test_unknown_runtime_is_refused(make_app: MakeApp) -> None:
    with pytest.raises(DetectError, match="not a runtime webfleet knows"):
        detect(make_app(), runtime="ruby")
