"""The sample app as a plain WSGI callable (stdlib only): which instance and AZ answered.

gunicorn serves `webfleet_app.wsgi:application`; the env file written at boot sets APP_*.
"""

from __future__ import annotations

import html
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from webfleet_app import __version__

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

DEFAULT_IMDS_URL = "http://169.254.169.254"
UNKNOWN = "unknown"
# Short: a health check must never wait long on the metadata service.
IMDS_TIMEOUT_SECONDS = 1.0
# After a failure, serve "unknown" for a while instead of paying the timeout on every request.
IMDS_RETRY_AFTER_SECONDS = 30.0
TOKEN_TTL_SECONDS = 21600


@dataclass(frozen=True)
class InstanceIdentity:
    instance_id: str
    availability_zone: str


UNKNOWN_IDENTITY = InstanceIdentity(UNKNOWN, UNKNOWN)


class MetadataClient:
    """Reads the instance identity from IMDS with IMDSv2 tokens; caches the first success."""

    def __init__(self, base_url: str | None = None, timeout: float = IMDS_TIMEOUT_SECONDS) -> None:
        self._base_url = (base_url or DEFAULT_IMDS_URL).rstrip("/")
        self._timeout = timeout
        self._lock = threading.Lock()
        self._identity: InstanceIdentity | None = None
        self._retry_at = 0.0

    def identity(self) -> InstanceIdentity:
        with self._lock:
            if self._identity is not None:
                return self._identity
            if time.monotonic() < self._retry_at:
                return UNKNOWN_IDENTITY
            try:
                self._identity = self._fetch()
            except (OSError, ValueError):
                # URLError and timeouts are OSErrors; the app must answer without IMDS.
                self._retry_at = time.monotonic() + IMDS_RETRY_AFTER_SECONDS
                return UNKNOWN_IDENTITY
            return self._identity

    def _fetch(self) -> InstanceIdentity:
        token = self._request(
            "PUT",
            "/latest/api/token",
            {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        headers = {"X-aws-ec2-metadata-token": token}
        return InstanceIdentity(
            instance_id=self._request("GET", "/latest/meta-data/instance-id", headers),
            availability_zone=self._request(
                "GET", "/latest/meta-data/placement/availability-zone", headers
            ),
        )

    def _request(self, method: str, path: str, headers: dict[str, str]) -> str:
        request = urllib.request.Request(self._base_url + path, method=method, headers=headers)
        # No proxy: the metadata service is link-local, a proxy would only get in the way.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=self._timeout) as response:
            data: bytes = response.read()
        value = data.decode("utf-8").strip()
        if not value:
            raise ValueError(f"empty answer from {path}")
        return value


@dataclass(frozen=True)
class Response:
    status: str
    content_type: str
    body: bytes


def create_app(metadata: MetadataClient | None = None) -> WSGIApp:
    """A WSGI app; IMDS base URL from $APP_IMDS_URL unless a client is given (tests)."""
    client = metadata or MetadataClient(os.environ.get("APP_IMDS_URL"))

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        identity = client.identity()
        response = _route(environ, identity)
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("X-App-Version", __version__),
            ("X-Instance-Id", identity.instance_id),
        ]
        start_response(response.status, headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]

    return application


def _route(environ: dict[str, Any], identity: InstanceIdentity) -> Response:
    path = environ.get("PATH_INFO") or "/"
    if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
        return _text("405 Method Not Allowed", "method not allowed\n")
    if path == os.environ.get("APP_HEALTH_CHECK_PATH", "/healthz"):
        return _text("200 OK", "ok")
    if path == "/":
        return Response("200 OK", "text/html; charset=utf-8", _page(identity).encode())
    if path.startswith("/api/"):
        payload = {
            "path": path,
            "instance_id": identity.instance_id,
            "availability_zone": identity.availability_zone,
            "version": __version__,
        }
        return Response("200 OK", "application/json", json.dumps(payload).encode())
    return _text("404 Not Found", "not found\n")


def _text(status: str, text: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", text.encode())


def _page(identity: InstanceIdentity) -> str:
    name = html.escape(os.environ.get("APP_NAME", "webfleet-app"))
    greeting = html.escape(os.environ.get("APP_GREETING", "Hello"))
    environment = html.escape(os.environ.get("APP_ENVIRONMENT", UNKNOWN))
    instance_id = html.escape(identity.instance_id)
    zone = html.escape(identity.availability_zone)
    version = html.escape(__version__)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{name} on {instance_id}</title></head>
<body>
<h1>{greeting} from {name}</h1>
<p>Served by instance <strong id="instance-id">{instance_id}</strong>
in availability zone <strong id="availability-zone">{zone}</strong>.</p>
<ul>
<li>Environment: <span id="environment">{environment}</span></li>
<li>Version: <span id="version">{version}</span></li>
</ul>
</body>
</html>
"""


application = create_app()
