"""Which requests are writes (saved before they are answered) in each AWS protocol, and that the
middleware saves after the inner app answered a write and before the answer is handed on."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import pytest

from webfleet.localregion.api.durable_writes import DurableWritesMiddleware, is_write


def environ(
    method: str = "POST", body: bytes = b"", target: str = "", query: str = ""
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "CONTENT_LENGTH": str(len(body)),
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
    }
    if target:
        found["HTTP_X_AMZ_TARGET"] = target
    return found


@pytest.mark.parametrize(
    ("request_environ", "write"),
    [
        (environ(body=b"Action=CreateLoadBalancer&Version=2015-12-01"), True),
        (environ(body=b"Action=DescribeLoadBalancers&Version=2015-12-01"), False),
        (environ(body=b"Action=GetCallerIdentity"), False),
        (environ(body=b"Action=ListRoles"), False),
        (environ(method="GET", query="Action=TerminateInstances"), True),
        (environ(target="Logs_20140328.CreateLogGroup"), True),
        (environ(target="AmazonSSM.GetParameter"), False),
        (environ(method="PUT"), True),  # S3 PutObject: REST, no action name
        (environ(method="GET"), False),
        (environ(method="HEAD"), False),
    ],
)
def test_writes_are_told_from_reads(request_environ: dict[str, Any], write: bool) -> None:
    assert is_write(request_environ, request_environ["wsgi.input"].getvalue()) is write


def test_a_write_is_saved_after_it_is_handled_and_before_it_is_answered() -> None:
    events: list[str] = []

    def app(_environ: dict[str, Any], _start_response: Any) -> Iterable[bytes]:
        events.append("handled")
        yield b"answer"

    middleware = DurableWritesMiddleware(app, lambda: events.append("saved"))
    answer = middleware(environ(body=b"Action=CreateVpc"), lambda *_: None)
    assert events == ["handled", "saved"]
    assert list(answer) == [b"answer"]

    events.clear()
    read = middleware(environ(body=b"Action=DescribeVpcs"), lambda *_: None)
    assert list(read) == [b"answer"] and events == ["handled"]
