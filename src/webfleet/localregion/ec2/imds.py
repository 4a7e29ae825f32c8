"""The EC2 instance metadata service of one VPC: IMDSv1 and v2 tokens on 169.254.169.254.

It runs as its own process inside the VPC's metadata network namespace
(`python -m webfleet.localregion.ec2.imds --registry FILE --bind 169.254.169.254:80`) and tells
instances apart by source IP. What it serves comes from a JSON registry file the machine runtime
rewrites atomically; it is reread per request, so launches need no signal to the server.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL_SECONDS = 21600
API_VERSIONS = ("latest", "2009-04-04", "2021-03-23")
OWNER_ID = "000000000000"

# A metadata tree: directories are dicts, leaves are strings.
Tree = dict[str, "Tree | str"]


@dataclass(frozen=True)
class InstanceRecord:
    """What the metadata service knows about one instance."""

    instance_id: str
    private_ip: str
    prefixlen: int
    mac: str
    vpc_id: str
    subnet_cidr: str
    availability_zone: str
    region: str
    ami_id: str
    instance_type: str
    http_tokens: str = "optional"  # "required": IMDSv1 requests are refused
    user_data_b64: str = ""  # user data is bytes (it may be gzipped): stored as base64
    public_keys: list[tuple[str, str]] = field(default_factory=list)  # (name, openssh key)

    @property
    def hostname(self) -> str:
        return f"ip-{self.private_ip.replace('.', '-')}.{self.region}.compute.internal"


def read_registry(path: Path) -> dict[str, InstanceRecord]:
    """Private IP -> record; an absent or half-written file reads as empty."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    records: dict[str, InstanceRecord] = {}
    for ip, data in raw.items():
        data["public_keys"] = [tuple(pair) for pair in data.get("public_keys", [])]
        records[ip] = InstanceRecord(**data)
    return records


def write_registry(path: Path, records: Mapping[str, InstanceRecord]) -> None:
    # Write then rename: the server may read at any moment and must never see half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(
        json.dumps({ip: asdict(record) for ip, record in records.items()}, indent=1),
        encoding="utf-8",
    )
    temporary.replace(path)


def metadata_tree(record: InstanceRecord) -> Tree:
    """The meta-data/ tree cloud-init crawls, enough for its Ec2 datasource to be content."""
    interface: Tree = {
        "device-number": "0",
        "interface-id": "eni-" + hashlib.sha256(record.instance_id.encode()).hexdigest()[:17],
        "local-hostname": record.hostname,
        "local-ipv4s": record.private_ip,
        "mac": record.mac,
        "owner-id": OWNER_ID,
        "subnet-id": "subnet-" + hashlib.sha256(record.subnet_cidr.encode()).hexdigest()[:17],
        "subnet-ipv4-cidr-block": record.subnet_cidr,
        "vpc-id": record.vpc_id,
        "vpc-ipv4-cidr-block": record.subnet_cidr,
        "vpc-ipv4-cidr-blocks": record.subnet_cidr,
    }
    keys: Tree = {
        f"{index}={name}": {"openssh-key": text}
        for index, (name, text) in enumerate(record.public_keys)
    }
    tree: Tree = {
        "ami-id": record.ami_id,
        "ami-launch-index": "0",
        "hostname": record.hostname,
        "instance-id": record.instance_id,
        "instance-type": record.instance_type,
        "local-hostname": record.hostname,
        "local-ipv4": record.private_ip,
        "mac": record.mac,
        "network": {"interfaces": {"macs": {record.mac: interface}}},
        "placement": {
            "availability-zone": record.availability_zone,
            "region": record.region,
        },
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }
    if keys:
        tree["public-keys"] = keys
    return tree


def identity_document(record: InstanceRecord) -> str:
    return json.dumps(
        {
            "accountId": OWNER_ID,
            "architecture": "x86_64",
            "availabilityZone": record.availability_zone,
            "imageId": record.ami_id,
            "instanceId": record.instance_id,
            "instanceType": record.instance_type,
            "pendingTime": "1970-01-01T00:00:00Z",
            "privateIp": record.private_ip,
            "region": record.region,
            "version": "2017-09-30",
        },
        indent=2,
    )


def lookup(tree: Tree, parts: list[str]) -> Tree | str | None:
    node: Tree | str = tree
    for part in parts:
        if not isinstance(node, dict):
            return None
        if part in node:
            node = node[part]
            continue
        # public-keys/0/ addresses the entry listed as "0=keyname".
        named = [value for key, value in node.items() if key.split("=", 1)[0] == part]
        if not named:
            return None
        node = named[0]
    return node


def render(node: Tree | str) -> str:
    if isinstance(node, str):
        return node
    # Directories end in "/", except "0=name" entries, as on EC2.
    return "\n".join(
        key + ("/" if isinstance(value, dict) and "=" not in key else "")
        for key, value in node.items()
    )


class TokenSigner:
    """Stateless IMDSv2 tokens: the owner's IP and expiry, signed with a per-process secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def issue(self, ip: str, ttl_seconds: int, now: float | None = None) -> str:
        expires = int((now or time.time()) + ttl_seconds)
        payload = f"{ip}|{expires}".encode()
        return base64.urlsafe_b64encode(payload + b"|" + self._mac(payload)).decode()

    def valid_for(self, token: str, ip: str, now: float | None = None) -> bool:
        try:
            raw = base64.urlsafe_b64decode(token.encode())
            # The MAC is raw bytes and may itself hold b"|": split by its fixed length.
            payload, separator, signature = raw[:-17], raw[-17:-16], raw[-16:]
            if separator != b"|":
                return False
            owner, expires = payload.decode().split("|")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
            return False
        return (
            hmac.compare_digest(signature, self._mac(payload))
            and owner == ip
            and int(expires) > (now or time.time())
        )

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]


class MetadataHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: MetadataServer

    def do_PUT(self) -> None:
        if self.path != TOKEN_PATH:
            self._reply(404)
            return
        # As on EC2: a forwarded request is refused, so a proxy on the instance cannot mint tokens.
        if self.headers.get("X-Forwarded-For") is not None:
            self._reply(403)
            return
        try:
            ttl = int(self.headers.get(TTL_HEADER, ""))
        except ValueError:
            self._reply(400)
            return
        if not 1 <= ttl <= MAX_TTL_SECONDS:
            self._reply(400)
            return
        token = self.server.signer.issue(self.client_address[0], ttl)
        self._reply(200, token, extra={TTL_HEADER: str(ttl)})

    def do_GET(self) -> None:
        ip = self.client_address[0]
        record = read_registry(self.server.registry).get(ip)
        if record is None:
            self._reply(404)
            return
        token = self.headers.get(TOKEN_HEADER)
        if token is not None:
            if not self.server.signer.valid_for(token, ip):
                self._reply(401)
                return
        elif record.http_tokens == "required":
            self._reply(401)
            return
        status, body = answer(record, self.path)
        self._reply(status, body)

    def _reply(self, status: int, body: str = "", extra: Mapping[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.client_address[0]} {format % args}\n")


def answer(record: InstanceRecord, path: str) -> tuple[int, str]:
    """Status and body for a GET of path by record's instance (after the token checks)."""
    parts = [part for part in path.split("?", 1)[0].split("/") if part]
    if not parts:
        return 200, "\n".join(API_VERSIONS)
    parts = parts[1:]  # every version prefix serves the same data
    if not parts:
        return 200, "dynamic\nmeta-data\nuser-data"
    if parts == ["user-data"]:
        user_data = base64.b64decode(record.user_data_b64).decode("latin-1")
        return (200, user_data) if user_data else (404, "")
    if parts[0] == "dynamic":
        tree: Tree = {"instance-identity": {"document": identity_document(record)}}
        node = lookup(tree, parts[1:])
    elif parts[0] == "meta-data":
        node = lookup(metadata_tree(record), parts[1:])
    else:
        node = None
    return (404, "") if node is None else (200, render(node))


class MetadataServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], registry: Path) -> None:
        super().__init__(address, MetadataHandler)
        self.registry = registry
        self.signer = TokenSigner()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registry", type=Path, required=True)
    parser.add_argument("--bind", default="169.254.169.254:80")
    parser.add_argument("--ready-file", type=Path, help="created once the socket listens")
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    server = MetadataServer((host, int(port)), args.registry)
    if args.ready_file is not None:
        args.ready_file.write_text(f"{server.server_address[1]}\n", encoding="utf-8")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
