"""The local region's API app served in-process, for the tests that drive it through boto3."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from webfleet.localregion.api.app import create_api_app


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The API app served on an ephemeral loopback port for the module's tests."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, create_api_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def fresh_region(endpoint: str) -> None:
    """The test starts from empty backends (moto's state is process-wide)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
