"""The local region's AWS API: moto's server application, with the patches the region needs."""

from __future__ import annotations

from collections.abc import Callable

from webfleet.localregion.api import patches
from webfleet.localregion.api.durable_writes import DurableWritesMiddleware
from webfleet.localregion.api.error_middleware import UnhandledErrorMiddleware, WSGIApp

__all__ = ["WSGIApp", "create_api_app"]


def create_api_app(save_write: Callable[[], None] | None = None) -> WSGIApp:
    """Build the WSGI application that answers every AWS service the local region serves.

    moto's DomainDispatcherApplication, with every registered patch applied (see api/patches.py;
    moto's gaps are fixed at the API level) and unhandled errors answered at once: the same
    Terraform configuration then plans clean and applies quickly against it. save_write, if
    given, runs after each write request, before its answer is sent.
    """
    # Imported here: moto reads MOTO_* settings from the environment at import time.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    patches.apply_all()
    moto_app: WSGIApp = DomainDispatcherApplication(create_backend_app)
    app: WSGIApp = UnhandledErrorMiddleware(moto_app)
    return app if save_write is None else DurableWritesMiddleware(app, save_write)
