"""A Python app: which framework it uses, the server command that starts it, and whether the
server it names is among the app's dependencies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from webfleet.config import START_EXAMPLES
from webfleet.scaffold import django_app, health, python_deps
from webfleet.scaffold.proposal import Note, Proposal
from webfleet.scaffold.source_files import python_modules, read_text

PORT = 8000
_ASSIGNED = r"^(\w+)\s*(?::[^=\n]+)?=\s*(?:{module}\.)?{cls}\("
_FASTAPI = re.compile(_ASSIGNED.format(module="fastapi", cls="FastAPI"), re.MULTILINE)
_FLASK = re.compile(_ASSIGNED.format(module="flask", cls="Flask"), re.MULTILINE)
_FACTORY = re.compile(r"^def\s+(create_app|make_app)\s*\(", re.MULTILINE)
_WSGI_CALLABLE = re.compile(r"^(?:def\s+application\s*\(|application\s*(?::[^=\n]+)?=)", re.M)
# Where an app is usually declared: these module names are looked at first.
_USUAL_NAMES = ("app", "main", "wsgi", "asgi", "server", "application", "api", "run")


@dataclass(frozen=True)
class _Found:
    framework: str
    # gunicorn's or uvicorn's "module:callable".
    target: str
    file: Path
    # The name the app's routes are declared on (@app.route), if it is a module-level object.
    app_object: str | None
    # Where the module is imported from when that is not the app's directory ("src").
    import_root: str | None = None


def propose(app_dir: Path) -> Proposal:
    dependencies = python_deps.declared(app_dir)
    django = django_app.find(app_dir)
    if django is not None:
        proposal = _django(django)
    elif (found := _find_app(app_dir)) is not None:
        proposal = _framework(found, app_dir)
    else:
        proposal = Proposal(
            runtime="python",
            detected="Python project",
            start=START_EXAMPLES["python"],
            port=PORT,
            health_check_path=health.DEFAULT_PATH,
            notes=(
                Note(
                    "start",
                    "no Django, Flask or FastAPI app found: replace this placeholder with the "
                    "command that serves your app on $PORT",
                    warning=True,
                ),
            ),
        )
    return _with_server_check(proposal, dependencies)


def _django(project: django_app.DjangoProject) -> Proposal:
    notes = [
        Note(
            "app",
            "Django: ALLOWED_HOSTS must accept the load balancer's name "
            "(APP_LOAD_BALANCER_DNS_NAME in the app's environment) and the instance's own "
            "address, which the health checks send as Host",
        )
    ]
    if project.wsgi_module is None:
        start = "gunicorn mysite.wsgi --bind 0.0.0.0:$PORT --workers 2 --access-logfile -"
        notes.append(
            Note(
                "start",
                "Django project without a wsgi.py next to its settings: put your project's "
                "WSGI module in place of mysite.wsgi",
                warning=True,
            )
        )
    else:
        start = (
            f"gunicorn {project.wsgi_module} --bind 0.0.0.0:$PORT --workers 2 --access-logfile -"
        )
        notes.append(
            Note("start", f"found a Django project; gunicorn serves {project.wsgi_module}")
        )
    path, health_note = _health(project.health_path, project.health_source)
    notes.append(health_note)
    return Proposal(
        runtime="python",
        detected="Django",
        start=start,
        port=PORT,
        health_check_path=path,
        notes=tuple(notes),
    )


def _framework(found: _Found, app_dir: Path) -> Proposal:
    source = str(found.file.relative_to(app_dir))
    if found.framework == "FastAPI":
        start = f"uvicorn {found.target} --host 0.0.0.0 --port $PORT"
        root_option = "--app-dir"
    else:
        start = f"gunicorn {found.target} --bind 0.0.0.0:$PORT --workers 2"
        root_option = "--pythonpath"
        if found.framework == "WSGI":
            start += " --access-logfile -"
    if found.import_root is not None:
        start += f" {root_option} {found.import_root}"
    routes = _routes(read_text(found.file), found.app_object) if found.app_object else []
    path, health_note = _health(health.pick(routes), source if routes else None)
    return Proposal(
        runtime="python",
        detected=found.framework,
        start=start,
        port=PORT,
        health_check_path=path,
        notes=(
            Note("start", f"found the {found.framework} app {found.target} in {source}"),
            health_note,
        ),
    )


def _health(path: str | None, source: str | None) -> tuple[str, Note]:
    if path is not None:
        return path, Note("health_check_path", f"found a health-like route of the app in {source}")
    return health.DEFAULT_PATH, Note(
        "health_check_path",
        "point this at a route your app really serves with 200 (the load balancer replaces "
        "instances that fail it)",
        warning=True,
    )


def _find_app(app_dir: Path) -> _Found | None:
    for module, path, root in _candidates(app_dir):
        text = read_text(path)
        # An installed project (pyproject.toml) imports from anywhere; requirements.txt apps
        # only from the app's directory, unless the server is told where else.
        installed = root == app_dir or (app_dir / "pyproject.toml").is_file()
        import_root = None if installed else str(root.relative_to(app_dir))
        if found := _FASTAPI.search(text):
            target, obj = f"{module}:{found.group(1)}", found.group(1)
            return _Found("FastAPI", target, path, obj, import_root)
        if found := _FLASK.search(text):
            target, obj = f"{module}:{found.group(1)}", found.group(1)
            return _Found("Flask", target, path, obj, import_root)
        if "Flask(" in text and (factory := _FACTORY.search(text)):
            # Quoted: the shell would take the parentheses for its own.
            target = f"'{module}:{factory.group(1)}()'"
            return _Found("Flask", target, path, "app", import_root)
        if module.rpartition(".")[2] == "wsgi" and _WSGI_CALLABLE.search(text):
            return _Found("WSGI", f"{module}:application", path, None, import_root)
    return None


def _candidates(app_dir: Path) -> Iterator[tuple[str, Path, Path]]:
    """(module, file, import root) for the app's modules, the usual names first."""
    found = [
        (module, path, root)
        for root in (app_dir, app_dir / "src")
        if root.is_dir()
        for module, path in python_modules(root)
    ]

    def order(item: tuple[str, Path, Path]) -> tuple[int, int, str]:
        module = item[0]
        last = module.rpartition(".")[2]
        usual = _USUAL_NAMES.index(last) if last in _USUAL_NAMES else len(_USUAL_NAMES)
        return module.count("."), usual, module

    yield from sorted(found, key=order)


def _routes(text: str, app_object: str) -> list[str]:
    decorator = re.compile(
        rf"""@{re.escape(app_object)}\.(?:route|get|head|api_route)\(\s*[ru]?["'](/[^"'\n]*)["']"""
    )
    rule = re.compile(rf"""{re.escape(app_object)}\.add_url_rule\(\s*["'](/[^"'\n]*)["']""")
    return [m.group(1) for pattern in (decorator, rule) for m in pattern.finditer(text)]


def _with_server_check(proposal: Proposal, dependencies: python_deps.Dependencies) -> Proposal:
    server = (proposal.start or "").split(" ", 1)[0]
    if server not in ("gunicorn", "uvicorn") or dependencies.declares(server):
        return proposal
    warning = Note(
        "start",
        f"{server} is not among the app's declared dependencies "
        f"({dependencies.describe_sources()}): add it there, or the service will not start",
        warning=True,
    )
    return replace(proposal, notes=(*proposal.notes, warning))
