"""A Django project: its WSGI module (for gunicorn) and a health-like route from its URLconf."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from webfleet.scaffold import health
from webfleet.scaffold.source_files import python_modules, read_text

_SETTINGS_MODULE = re.compile(r"""DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']""")
_ROOT_URLCONF = re.compile(r"""^ROOT_URLCONF\s*=\s*["']([\w.]+)["']""", re.MULTILINE)
# path("route", ...) / re_path(r"^route$", ...), and the module an include() names, if any.
_ROUTE = re.compile(
    r"""\b(re_)?path\(\s*[ru]?["']([^"'\n]*)["']\s*,\s*"""
    r"""(?:include\(\s*\(?\s*["']([\w.]+)["'])?"""
)
_REGEX_SYNTAX = re.compile(r"[\\()\[\]*+?|{}^$]")
_MAX_INCLUDE_DEPTH = 5


@dataclass(frozen=True)
class DjangoProject:
    # "mysite.wsgi", or None when no wsgi.py was found.
    wsgi_module: str | None
    # A health-like route of the project's URLconf ("/health/"), and the file naming it.
    health_path: str | None = None
    health_source: str | None = None


def find(app_dir: Path) -> DjangoProject | None:
    """The Django project of app_dir (it has manage.py), or None."""
    manage = app_dir / "manage.py"
    if not manage.is_file():
        return None
    modules = dict(python_modules(app_dir, depth=3))
    settings = _settings_module(read_text(manage), modules)
    wsgi = _wsgi_module(settings, modules)
    if wsgi is None:
        return DjangoProject(None)
    urlconf = _root_urlconf(settings, modules) or f"{wsgi.rpartition('.')[0]}.urls"
    routes = dict(_routes(urlconf, modules, prefix="", depth=0))
    best = health.pick(routes)
    if best is None:
        return DjangoProject(wsgi)
    return DjangoProject(wsgi, best, str(routes[best].relative_to(app_dir)))


def _settings_module(manage_py: str, modules: dict[str, Path]) -> str | None:
    named = _SETTINGS_MODULE.search(manage_py)
    if named:
        return named.group(1)
    for module, path in modules.items():
        if module.endswith(".wsgi") and (found := _SETTINGS_MODULE.search(read_text(path))):
            return found.group(1)
    return None


def _wsgi_module(settings: str | None, modules: dict[str, Path]) -> str | None:
    # The settings' package (or a parent of it) holds wsgi.py in Django's own layout.
    if settings is not None:
        parts = settings.split(".")
        for end in range(len(parts) - 1, 0, -1):
            candidate = ".".join((*parts[:end], "wsgi"))
            if candidate in modules:
                return candidate
    found = [
        module
        for module, path in modules.items()
        if module.endswith(".wsgi") and "get_wsgi_application" in read_text(path)
    ]
    return min(found, key=lambda module: (module.count("."), module)) if found else None


def _root_urlconf(settings: str | None, modules: dict[str, Path]) -> str | None:
    if settings is None:
        return None
    # A settings package (settings/__init__.py, base.py, production.py, ...) counts as a whole.
    for module, path in modules.items():
        if module == settings or module.startswith(f"{settings}."):
            found = _ROOT_URLCONF.search(read_text(path))
            if found:
                return found.group(1)
    return None


def _routes(
    urlconf: str, modules: dict[str, Path], prefix: str, depth: int
) -> Iterator[tuple[str, Path]]:
    """(full literal path, the urls.py naming it) for the URLconf and what it includes."""
    path = modules.get(urlconf)
    if path is None or depth > _MAX_INCLUDE_DEPTH:
        return
    for match in _ROUTE.finditer(read_text(path)):
        route = _literal(match.group(2), regex=match.group(1) is not None)
        if route is None:
            continue
        included = match.group(3)
        if included is not None and included in modules:
            yield from _routes(included, modules, prefix + route, depth + 1)
        else:
            # A view, or an app from elsewhere (e.g. health_check.urls): the route answers.
            yield f"/{prefix}{route}", path


def _literal(route: str, *, regex: bool) -> str | None:
    if regex:
        route = route.removeprefix("^").removesuffix("$")
        return None if _REGEX_SYNTAX.search(route) else route
    return None if "<" in route else route
