"""The local region's AWS API: moto's server application, with the fixes the local region needs."""

from __future__ import annotations

from webfleet.localregion.api.fixes import UnhandledErrorMiddleware, WSGIApp, apply_model_fixes

__all__ = ["WSGIApp", "create_api_app"]


def create_api_app() -> WSGIApp:
    """Build the WSGI application that answers every AWS service the local region serves.

    moto's DomainDispatcherApplication, with moto's gaps fixed at the API level (see api_fixes):
    the same Terraform configuration then plans clean and applies quickly against it.
    """
    # Imported here: moto reads MOTO_* settings from the environment at import time.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    apply_model_fixes()
    moto_app: WSGIApp = DomainDispatcherApplication(create_backend_app)
    return UnhandledErrorMiddleware(moto_app)
