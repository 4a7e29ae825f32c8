"""Every answered write is on disk before its answer leaves: a daemon killed a moment after
answering CreateLoadBalancer must not come back without the load balancer Terraform was told
exists (its waiter would look for it until it times out). Reads are answered as they are."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from webfleet.localregion.api.error_middleware import (
    StartResponse,
    WSGIApp,
    WSGIEnviron,
    buffer_body,
    request_action,
)

# Actions that only read (every service's naming); REST calls (S3) read with GET and HEAD.
_READ_PREFIXES = ("Describe", "List", "Get", "Head", "Lookup", "Search", "Query", "Scan")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_write(environ: WSGIEnviron, body: bytes) -> bool:
    action = request_action(environ, body)
    if action:
        return not action.startswith(_READ_PREFIXES)
    return environ.get("REQUEST_METHOD", "GET") not in _READ_METHODS


class DurableWritesMiddleware:
    """Calls `save` after each write request is handled and before its response is sent."""

    def __init__(self, app: WSGIApp, save: Callable[[], None]) -> None:
        self.app = app
        self.save = save

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        if not is_write(environ, buffer_body(environ)):
            return self.app(environ, start_response)
        # Materialised first: werkzeug sends the status line with the first body chunk.
        result = self.app(environ, start_response)
        try:
            response = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        self.save()
        return response
