"""The local region's API app served in-process, for the tests that drive it through boto3."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from webfleet.localregion.api.app import create_api_app
from webfleet.localregion.api.server import served_in_thread


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The API app served on an ephemeral loopback port for the module's tests."""
    with served_in_thread(create_api_app()) as url:
        yield url


@pytest.fixture
def fresh_region(endpoint: str) -> None:
    """The test starts from empty backends (moto's state is process-wide)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
