"""ALB access logs from HAProxy: its log lines become ELB's access log entries, published to the
balancer's bucket (moto's S3, in process) under the key ELB uses. The last test runs a real
HAProxy and a real HTTP server as the target."""

from __future__ import annotations

import gzip
import secrets
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from moto.s3.models import s3_backends

from tests.unit.localregion.elb.test_draining import runtime
from tests.unit.localregion.elb.test_haproxy_config import HTTP, WEB
from tests.unit.localregion.elb.test_joining_servers import _Healthy, group_with
from webfleet.localregion.elb.access_logs import (
    Destination,
    LoggedBalancer,
    elb_entry,
    object_key,
)
from webfleet.localregion.elb.haproxy_config import Target, backend_name
from webfleet.localregion.elb.load_balancers import LoadBalancerRuntime
from webfleet.localregion.elb.snapshot import BalancerRecord

ACCOUNT = "123456789012"
ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/web/0123456789abcdef"
DESTINATION = Destination("web-logs", "alb", ACCOUNT, "us-east-1")
BALANCER = LoggedBalancer(ARN, DESTINATION, "127.77.3.2", {"tg_web": WEB.arn})

# The fields of haproxy_log_format, as HAProxy 2.6 writes them.
FORWARDED = "\t".join(
    ["1764788400", "250", "12", "127.0.0.1", "51234", "10.0.1.10", "8080", "1", "0", "0", "9",
     "200", "87", "310", "GET", "/api/items?page=2", "HTTP/1.1", "tg_web", "80", "0", "", "",
     "", "10", "shop.example.test:80", "curl/8.5.0"]
)  # fmt: skip
REDIRECTED = "\t".join(
    ["1764788400", "0", "0", "127.0.0.1", "51235", "-", "-", "0", "-1", "-1", "-1",
     "301", "75", "180", "GET", "/", "HTTP/1.1", "listener_80", "80", "0", "", "",
     "", "-", "shop.example.test", "Mozilla/5.0 (X11; \"quoted\")"]
)  # fmt: skip


def test_a_forwarded_request_reads_as_elbs_entry() -> None:
    entry = elb_entry(FORWARDED, BALANCER)
    assert entry == (
        "http 2025-12-03T19:00:00.262000Z app/web/0123456789abcdef 127.0.0.1:51234 "
        "10.0.1.10:8080 0.001 0.009 0.000 200 200 87 310 "
        '"GET http://shop.example.test:80/api/items?page=2 HTTP/1.1" "curl/8.5.0" - - '
        f'{WEB.arn} "-" "-" "-" 10 2025-12-03T19:00:00.250000Z "forward" "-" "-" '
        '"10.0.1.10:8080" "200" "-" "-"'
    )


def test_a_redirect_has_no_target_and_quotes_survive() -> None:
    fields = elb_entry(REDIRECTED, BALANCER).split(" ")
    assert fields[4:10] == ["-", "-1", "-1", "-1", "301", "-"]
    entry = elb_entry(REDIRECTED, BALANCER)
    assert '"Mozilla/5.0 (X11; \\"quoted\\")"' in entry
    assert ' 0 2025-12-03T19:00:00.000000Z "redirect" ' in entry


def test_objects_are_named_as_elb_names_them() -> None:
    key = object_key(BALANCER, datetime(2025, 12, 3, 19, 5, tzinfo=UTC))
    prefix = (
        "alb/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/12/03/"
        "123456789012_elasticloadbalancing_us-east-1_app.web.0123456789abcdef_20251203T1905Z_"
        "127.77.3.2_"
    )
    assert key.startswith(prefix) and key.endswith(".log.gz")
    assert len(key) == len(prefix) + 8 + len(".log.gz")


@pytest.fixture
def lbs() -> Iterator[LoadBalancerRuntime]:
    with tempfile.TemporaryDirectory(prefix="wf-lb-") as directory:  # short: socket paths
        runtime_ = runtime(Path(directory))
        runtime_.directory.mkdir(parents=True)
        yield runtime_
        runtime_.stop()


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")
def test_requests_through_haproxy_are_published_to_the_bucket(lbs: LoadBalancerRuntime) -> None:
    s3 = s3_backends[ACCOUNT]["aws"]
    bucket = f"web-logs-{secrets.token_hex(4)}"
    s3.create_bucket(bucket, "us-east-1")
    destination = replace(DESTINATION, bucket=bucket)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        group = group_with(Target("i-0000000000000000a", "127.0.0.1", server.server_address[1]))
        record = BalancerRecord(ARN, "web", "web.elb.localhost", (HTTP,), (group,), 60, destination)
        lbs.access_logs.start()
        lbs._apply(record)
        (running,) = lbs._running.values()
        lbs.access_logs.configure(
            [LoggedBalancer(ARN, destination, running.address, {backend_name(group): group.arn})]
        )
        # The target joins down (503s) until its checks pass: every answer is logged.
        url = f"http://{running.address}/items"
        request = urllib.request.Request(url, headers={"Host": "shop.test"})
        deadline = time.monotonic() + 30
        while _status(request) != 200:
            assert time.monotonic() < deadline, "the target never became healthy"
            time.sleep(0.5)
        time.sleep(0.5)  # the last datagram's way to the reader
        lbs.access_logs.publish()
        objects = s3.get_bucket(bucket).keys
        assert objects and all(name.startswith("alb/AWSLogs/") for name in objects)
        lines = [
            line
            for name in objects
            for line in gzip.decompress(objects[name].value).decode().splitlines()
        ]
        served = [line for line in lines if " 200 200 " in line]
        refused = [line for line in lines if " 503 - " in line]
        assert served and refused, lines
        assert '"GET http://shop.test:80/items HTTP/1.1"' in served[-1]
        assert f" {group.arn} " in served[-1] and f" {group.arn} " in refused[0]
    finally:
        server.shutdown()
        server.server_close()
        for name in list(s3.get_bucket(bucket).keys):
            s3.delete_object(bucket, name)
        s3.delete_bucket(bucket)


def _status(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code
