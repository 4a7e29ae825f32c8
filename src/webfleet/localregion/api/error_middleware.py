"""Unhandled errors fail fast instead of being retried for minutes.

``UnhandledErrorMiddleware``: a crash inside moto (or an action it lacks) is answered with a
clear error that the SDKs do not retry, instead of a bare HTTP 500 that Terraform retries for
many minutes.
"""

from __future__ import annotations

import io
import json
import logging
import traceback
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]

# The SDKs retry HTTP 500/502/503/504 (the provider for many minutes); 501 is not retried.
UNHANDLED_ERROR_STATUS: Final = "501 Not Implemented"
# Where buffer_body keeps the body it read, in the request's environ.
_BUFFERED_BODY: Final = "webfleet.request_body"


def _credential_scope_service(environ: WSGIEnviron) -> str:
    """The service named in the SigV4 credential scope (``.../region/SERVICE/aws4_request``)."""
    auth: str = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return ""
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[3] if len(scope) >= 5 else ""


def request_action(environ: WSGIEnviron, body: bytes) -> str:
    """The API action: X-Amz-Target for JSON protocols, else the Action form/query parameter."""
    target: str = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    from urllib.parse import parse_qs

    query: str = environ.get("QUERY_STRING", "")
    for source in (body.decode("utf-8", "replace"), query):
        action = parse_qs(source).get("Action")
        if action:
            return action[0]
    return ""


def error_response_body(environ: WSGIEnviron, code: str, message: str) -> tuple[str, bytes]:
    """An AWS error document in the request's protocol: (content type, body)."""
    request_id = str(uuid.uuid4())
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in environ.get("CONTENT_TYPE", ""):
        document = {"__type": code, "message": message}
        return "application/x-amz-json-1.1", json.dumps(document).encode()
    code_xml, message_xml = escape(code), escape(message)
    if _credential_scope_service(environ) == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code_xml}</Code><Message>{message_xml}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    else:
        xml = (
            f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code_xml}</Code>"
            f"<Message>{message_xml}</Message></Error><RequestId>{request_id}</RequestId>"
            f"</ErrorResponse>"
        )
    return "text/xml", xml.encode()


class UnhandledErrorMiddleware:
    """Turn an exception escaping moto into a clear error response that clients do not retry.

    moto raises NotImplementedError for actions it lacks and lets its own bugs propagate; the
    server then answers a bare HTTP 500, which the AWS SDKs treat as transient: Terraform retries
    each such call for many minutes before it reports anything. A deterministic local failure is
    better reported at once, with the action and the exception in the message.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        body = buffer_body(environ)
        try:
            return self.app(environ, start_response)
        except Exception as error:  # anything moto did not handle
            service = _credential_scope_service(environ) or "unknown service"
            action = request_action(environ, body) or "unknown action"
            log.error("local region: %s %s failed:\n%s", service, action, traceback.format_exc())
            if isinstance(error, NotImplementedError):
                code = "NotImplemented"
                message = f"The local region does not implement {service}:{action} ({error})"
            else:
                code = "LocalRegionInternalError"
                message = (
                    f"The local region failed on {service}:{action}: "
                    f"{type(error).__name__}: {error}"
                )
            content_type, payload = error_response_body(environ, code, message)
            start_response(
                UNHANDLED_ERROR_STATUS,
                [("Content-Type", content_type), ("Content-Length", str(len(payload)))],
            )
            return [payload]


def buffer_body(environ: WSGIEnviron) -> bytes:
    """Read the request body once and hand the inner app an identical stream; every later call
    (each middleware asks) answers from that one read."""
    buffered = environ.get(_BUFFERED_BODY)
    if isinstance(buffered, bytes):
        return buffered
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    if body:
        environ["wsgi.input"] = io.BytesIO(body)
    environ[_BUFFERED_BODY] = body
    return body
