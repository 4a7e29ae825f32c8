"""The sample app (examples/sample/src/webfleet_app) against a fake IMDSv2 service on loopback."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import tomllib
from collections.abc import Iterator
from typing import Any, ClassVar
from wsgiref.util import setup_testing_defaults

import pytest

from tests.conftest import ROOT

APP_DIR = ROOT / "examples" / "sample"
# The app is its own project, not installed into .venv: import it from its sources.
if str(APP_DIR / "src") not in sys.path:
    sys.path.insert(0, str(APP_DIR / "src"))

import webfleet_app  # noqa: E402
from webfleet_app import wsgi  # noqa: E402

TOKEN = "test-token-123"
INSTANCE_ID = "i-0123456789abcdef0"
ZONE = "us-east-1b"


class FakeIMDS(http.server.ThreadingHTTPServer):
    """IMDS that only answers with a valid IMDSv2 token, and records every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _IMDSHandler)
        self.requests: list[tuple[str, str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _IMDSHandler(http.server.BaseHTTPRequestHandler):
    server: FakeIMDS
    answers: ClassVar[dict[str, str]] = {
        "/latest/meta-data/instance-id": INSTANCE_ID,
        "/latest/meta-data/placement/availability-zone": ZONE,
    }

    def do_PUT(self) -> None:
        self.server.requests.append(("PUT", self.path, None))
        if self.path != "/latest/api/token" or not self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        ):
            self._send(400, "bad token request")
            return
        self._send(200, TOKEN)

    def do_GET(self) -> None:
        token = self.headers.get("X-aws-ec2-metadata-token")
        self.server.requests.append(("GET", self.path, token))
        if token != TOKEN:
            self._send(401, "")
        elif self.path in self.answers:
            self._send(200, self.answers[self.path])
        else:
            self._send(404, "")

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def imds() -> Iterator[FakeIMDS]:
    server = FakeIMDS()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class Result:
    def __init__(self) -> None:
        self.status = ""
        self.headers: dict[str, str] = {}
        self.body = b""

    def start_response(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = dict(headers)

    @property
    def code(self) -> int:
        return int(self.status.split()[0])


def call(app: wsgi.WSGIApp, path: str, method: str = "GET") -> Result:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    result = Result()
    result.body = b"".join(app(environ, result.start_response))
    return result


@pytest.fixture
def app(imds: FakeIMDS, monkeypatch: pytest.MonkeyPatch) -> wsgi.WSGIApp:
    monkeypatch.setenv("APP_IMDS_URL", imds.url)
    monkeypatch.setenv("APP_NAME", "shop")
    monkeypatch.setenv("APP_GREETING", "Hello <world>")
    monkeypatch.setenv("APP_ENVIRONMENT", "local")
    monkeypatch.delenv("APP_HEALTH_CHECK_PATH", raising=False)
    return wsgi.create_app()


def test_index_says_which_instance_and_zone_answered(app: wsgi.WSGIApp) -> None:
    result = call(app, "/")
    assert result.code == 200
    assert result.headers["Content-Type"].startswith("text/html")
    page = result.body.decode()
    for text in (INSTANCE_ID, ZONE, "shop", "Hello &lt;world&gt;", "local", "1.0.0"):
        assert text in page


def test_health_check(app: wsgi.WSGIApp) -> None:
    result = call(app, "/healthz")
    assert (result.code, result.body) == (200, b"ok")
    assert result.headers["Content-Type"].startswith("text/plain")


def test_health_check_path_from_env(imds: FakeIMDS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_IMDS_URL", imds.url)
    monkeypatch.setenv("APP_HEALTH_CHECK_PATH", "/ready")
    app = wsgi.create_app()
    assert (call(app, "/ready").code, call(app, "/ready").body) == (200, b"ok")
    assert call(app, "/healthz").code == 404


def test_api_answers_json(app: wsgi.WSGIApp) -> None:
    result = call(app, "/api/orders/7")
    assert result.code == 200
    assert result.headers["Content-Type"] == "application/json"
    assert json.loads(result.body) == {
        "path": "/api/orders/7",
        "instance_id": INSTANCE_ID,
        "availability_zone": ZONE,
        "version": "1.0.0",
    }


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/x", "/nope"])
def test_every_response_names_version_and_instance(app: wsgi.WSGIApp, path: str) -> None:
    result = call(app, path)
    assert result.headers["X-App-Version"] == "1.0.0"
    assert result.headers["X-Instance-Id"] == INSTANCE_ID


def test_other_paths_are_404(app: wsgi.WSGIApp) -> None:
    assert call(app, "/nope").code == 404
    assert call(app, "/api").code == 404


def test_uses_imdsv2_only_and_caches_identity(app: wsgi.WSGIApp, imds: FakeIMDS) -> None:
    for path in ("/", "/api/a", "/healthz"):
        call(app, path)
    gets = [r for r in imds.requests if r[0] == "GET"]
    assert gets, "the app never asked IMDS"
    # A tokenless (IMDSv1) GET would be recorded with token None.
    assert all(token == TOKEN for _, _, token in gets)
    # Cached after the first success: one token, one read of each value.
    assert [r[1] for r in imds.requests] == [
        "/latest/api/token",
        "/latest/meta-data/instance-id",
        "/latest/meta-data/placement/availability-zone",
    ]


def test_unknown_when_imds_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = FakeIMDS()  # bound then closed: nothing listens on its port
    url = closed.url
    closed.server_close()
    monkeypatch.setenv("APP_IMDS_URL", url)
    app = wsgi.create_app()
    result = call(app, "/api/x")
    assert result.code == 200
    assert json.loads(result.body)["instance_id"] == "unknown"
    assert result.headers["X-Instance-Id"] == "unknown"
    assert call(app, "/").code == 200
    assert call(app, "/healthz").body == b"ok"


def test_version_matches_pyproject() -> None:
    project = tomllib.loads((APP_DIR / "pyproject.toml").read_text())["project"]
    assert webfleet_app.__version__ == project["version"]
