#!/usr/bin/env python3
"""Tiny EC2 instance metadata service (IMDSv1 + v2 tokens) for one VPC.

Instances are told apart by source IP; data comes from a JSON file
{ "<private ip>": {"meta-data": {...tree...}, "user-data": "..."} } reread per request.
"""
import json, secrets, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DB = sys.argv[1]
TOKENS: dict[str, tuple[str, float]] = {}  # token -> (ip, expiry)


def lookup(tree, parts):
    node = tree
    for p in parts:
        if isinstance(node, dict) and p in node:
            node = node[p]
        elif isinstance(node, dict) and any(k.startswith(p + "=") for k in node):
            node = next(v for k, v in node.items() if k.startswith(p + "="))  # public-keys/0/ for "0=name"
        else:
            return None
    return node


def render(node):
    if isinstance(node, dict):
        return "\n".join(k + ("/" if isinstance(v, dict) and "=" not in k else "") for k, v in node.items())
    return str(node)


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body=b"", ctype="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        if self.path != "/latest/api/token":
            return self.reply(404)
        try:
            ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
        except ValueError:
            return self.reply(400)
        if not 1 <= ttl <= 21600:
            return self.reply(400)
        tok = secrets.token_urlsafe(32)
        TOKENS[tok] = (self.client_address[0], time.time() + ttl)
        self.send_response(200)
        self.send_header("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))
        self.send_header("Content-Length", str(len(tok)))
        self.end_headers()
        self.wfile.write(tok.encode())

    def do_GET(self):
        ip = self.client_address[0]
        tok = self.headers.get("X-aws-ec2-metadata-token")
        if tok is not None:  # v2: a presented token must be valid (v1 also allowed, as on AWS by default)
            owner, exp = TOKENS.get(tok, (None, 0))
            if owner != ip or exp < time.time():
                return self.reply(401)
        with open(DB) as f:
            inst = json.load(f).get(ip)
        if inst is None:
            return self.reply(404)
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if not parts:
            return self.reply(200, "latest\n2009-04-04\n2021-03-23")
        parts = parts[1:]  # any version prefix ('latest', dates) serves the same data
        if not parts:
            return self.reply(200, "dynamic\nmeta-data\nuser-data")
        if parts == ["user-data"]:
            ud = inst.get("user-data")
            return self.reply(200, ud) if ud else self.reply(404)
        if parts[0] == "meta-data":
            node = lookup(inst["meta-data"], parts[1:])
            return self.reply(404) if node is None else self.reply(200, render(node))
        return self.reply(404)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))


ThreadingHTTPServer(("169.254.169.254", 80), H).serve_forever()
