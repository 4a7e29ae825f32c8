"""The region's AWS API component: moto's WSGI app served by werkzeug's threaded HTTP server."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from werkzeug.serving import BaseWSGIServer, make_server

from webfleet.localregion.api.app import create_api_app
from webfleet.localregion.api.error_middleware import WSGIApp
from webfleet.localregion.runtime.ports import bind_port

log = logging.getLogger(__name__)

_LISTEN_BACKLOG = 128
# How often serve_forever looks for a shutdown request: bounds how long stop() takes.
_SHUTDOWN_POLL_SECONDS = 0.1


class ApiServer:
    """Serves the AWS API on host:port from start() until stop()."""

    name = "api"

    def __init__(self, host: str, port: int, save_write: Callable[[], None] | None = None) -> None:
        self._host = host
        self._port = port
        self._save_write = save_write
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # Bound before moto is imported, so a taken port fails at once and in our words,
        # not after seconds of imports with werkzeug's own message and sys.exit.
        listener = bind_port(self._host, self._port)
        try:
            listener.listen(_LISTEN_BACKLOG)
            app = create_api_app(self._save_write)
            server = make_server(self._host, self._port, app, threaded=True, fd=listener.fileno())
        finally:
            listener.close()  # werkzeug serves on its own duplicate of the descriptor
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name="api-server",
        )
        self._thread.start()
        log.info("AWS API listening on http://%s:%d", self._host, self._port)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
        self._server = None
        self._thread = None
        log.info("AWS API stopped")


@contextlib.contextmanager
def served_in_thread(app: WSGIApp, host: str = "127.0.0.1") -> Iterator[str]:
    """app served from a thread on an ephemeral port of host, for clients in this process
    (tests, benchmarks): yields its endpoint URL."""
    server = make_server(host, 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS / 2}
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
