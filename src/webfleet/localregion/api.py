"""The local region's AWS API: moto's server application, with the fixes the local region needs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_api_app() -> WSGIApp:
    """Build the WSGI application that answers every AWS service the local region serves."""
    # Imported here: moto reads MOTO_* settings from the environment at import time.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app: WSGIApp = DomainDispatcherApplication(create_backend_app)
    return app
