"""Fault-injecting proxies, so tests can make AWS and the registry fail the way they fail in production.

- AWS proxy (`StackConfig.fault_proxy_url`): forwards every request to the gateway. A client whose
  `AWS_ENDPOINT_URL` points here gets the faults set for the operation it calls (throttling, 5xx, a
  canned answer, a reset connection).
- Registry proxy: serves port 443 of each registry of the fault region (`StackConfig.fault_region`),
  terminating TLS with the stack's certificate, and forwards to the real registry on its own port.
  Request and response bodies are streamed chunk by chunk, as Docker pushes layers of unknown size.
- Control endpoint, on the AWS proxy's port: `POST /_faults` adds a rule, `GET /_faults` lists the rules
  (with how often each fired) and every request seen, `DELETE /_faults` clears both.

A rule: `{"proxy": "aws"|"registry", "match": {...}, "respond": {...}, "skip": N, "times": K}`.
`match` keys, all optional, all must hold: `operation` (AWS: the X-Amz-Target suffix or the query
`Action`), `method`, `path` (a regex searched in the request path), `repository` (AWS: the
`repositoryName` in the body; registry: the name in `/v2/<name>/...`), `user_agent` (a substring).
`respond` is `{"status": S, "headers": {...}, "body": "..."}` or `{"reset": true}` (a TCP reset once the
request has been read). The first `skip` matching requests pass untouched, the next `times` (null:
all) get the fault. Rules are tried in the order they were added; the first one that fires wins.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import socketserver
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

from stack.config import Registry, StackConfig
from stack.serving import serve as serve_http

ECR_TARGET_SEPARATOR = "."
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
MAX_HEAD_BYTES = 64 * 1024
COPY_BYTES = 64 * 1024
CONNECTION_TIMEOUT_SECONDS = 120
MAX_REQUESTS_KEPT = 5000
REGISTRY_PATH = re.compile(r"^/v2/(?P<repository>.+?)/(?:blobs|manifests|tags)/")


@dataclass
class Rule:
    proxy: str
    match: dict[str, str]
    respond: dict[str, Any]
    skip: int = 0
    times: int | None = 1
    id: int = 0
    passed: int = 0  # matching requests let through because of `skip`
    hits: int = 0  # matching requests that got the fault

    def matches(self, proxy: str, request: dict[str, str]) -> bool:
        if proxy != self.proxy:
            return False
        for key, expected in self.match.items():
            actual = request.get(key, "")
            if key == "path":
                if re.search(expected, actual) is None:
                    return False
            elif key == "user_agent":
                if expected not in actual:
                    return False
            elif actual != expected:
                return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "proxy": self.proxy,
            "match": self.match,
            "respond": self.respond,
            "skip": self.skip,
            "times": self.times,
            "passed": self.passed,
            "hits": self.hits,
        }


@dataclass
class FaultBook:
    """The rules and the requests seen, shared by every proxy thread."""

    rules: list[Rule] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    next_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, spec: dict[str, Any]) -> Rule:
        if spec.get("proxy") not in ("aws", "registry"):
            raise ValueError("proxy: expected 'aws' or 'registry'")
        respond = spec.get("respond") or {}
        if not respond.get("reset") and not isinstance(respond.get("status"), int):
            raise ValueError("respond: expected a status or reset")
        with self.lock:
            rule = Rule(
                proxy=spec["proxy"],
                match={str(k): str(v) for k, v in (spec.get("match") or {}).items()},
                respond=respond,
                skip=int(spec.get("skip", 0)),
                times=None if spec.get("times", 1) is None else int(spec.get("times", 1)),
                id=self.next_id,
            )
            self.next_id += 1
            self.rules.append(rule)
        return rule

    def fault_for(self, proxy: str, request: dict[str, str]) -> dict[str, Any] | None:
        """The response a rule dictates for this request (None: forward it), and the request logged."""
        with self.lock:
            chosen = None
            for rule in self.rules:
                if not rule.matches(proxy, request):
                    continue
                if rule.passed < rule.skip:
                    rule.passed += 1
                    continue
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                rule.hits += 1
                chosen = rule
                break
            self.requests.append({**request, "proxy": proxy, "fault": str(chosen.id) if chosen else ""})
            del self.requests[:-MAX_REQUESTS_KEPT]
            return chosen.respond if chosen else None

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"rules": [rule.as_dict() for rule in self.rules], "requests": list(self.requests)}

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.requests.clear()


# Canned AWS errors, as each protocol spells them ------------------------------------------------------
def aws_error(operation: str, status: int, code: str, message: str) -> dict[str, Any]:
    """The error response of `operation`: JSON for ECR, the query protocol's XML for STS."""
    if operation in STS_OPERATIONS:
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        )
        return {"status": status, "headers": {"Content-Type": "text/xml"}, "body": body}
    return {
        "status": status,
        "headers": {"Content-Type": "application/x-amz-json-1.1"},
        "body": json.dumps({"__type": code, "message": message}),
    }


STS_OPERATIONS = {"AssumeRoleWithWebIdentity", "AssumeRole", "GetCallerIdentity"}
THROTTLING = {"status": 400, "code": "ThrottlingException", "message": "Rate exceeded"}
STS_THROTTLING = {"status": 400, "code": "Throttling", "message": "Rate exceeded"}
SERVER_ERROR = {"status": 500, "code": "ServerException", "message": "Injected internal error"}


def throttling(operation: str) -> dict[str, Any]:
    canned = STS_THROTTLING if operation in STS_OPERATIONS else THROTTLING
    return aws_error(operation, canned["status"], canned["code"], canned["message"])


def server_error(operation: str) -> dict[str, Any]:
    return aws_error(operation, SERVER_ERROR["status"], SERVER_ERROR["code"], SERVER_ERROR["message"])


# Shared by both proxies ----------------------------------------------------------------------------
def reset(connection: socket.socket) -> None:
    """Close with a TCP RST rather than a FIN: the peer reads 'connection reset by peer'."""
    try:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        connection.close()


def response_bytes(respond: dict[str, Any], *, close: bool) -> bytes:
    body = str(respond.get("body", "")).encode()
    status = int(respond["status"])
    lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Fault')}"]
    lines += [f"{name}: {value}" for name, value in (respond.get("headers") or {}).items()]
    lines += [f"Content-Length: {len(body)}"] + (["Connection: close"] if close else [])
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# AWS proxy -----------------------------------------------------------------------------------------
def aws_request_facts(method: str, path: str, headers: Any, body: bytes) -> dict[str, str]:
    target = headers.get("X-Amz-Target", "")
    operation = target.rsplit(ECR_TARGET_SEPARATOR, 1)[-1] if target else ""
    repository = ""
    if target:
        try:
            repository = str(json.loads(body or b"{}").get("repositoryName", ""))
        except (ValueError, AttributeError):
            repository = ""
    elif method == "POST" and body:
        operation = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
    return {
        "method": method,
        "path": urlsplit(path).path,
        "operation": operation,
        "repository": repository,
        "user_agent": headers.get("User-Agent", ""),
    }


def make_aws_handler(config: StackConfig, book: FaultBook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "stack-faults"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            print(f"aws {format % args}", flush=True)

        def _json(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _control(self, body: bytes) -> None:
            if self.command == "GET" and self.path == "/_faults/health":
                self._json(200, {"status": "ok"})
            elif self.command == "GET":
                self._json(200, book.state())
            elif self.command == "DELETE":
                book.clear()
                self._json(200, {})
            elif self.command == "POST":
                try:
                    rule = book.add(json.loads(body))
                except (ValueError, TypeError) as error:
                    self._json(400, {"message": str(error)})
                    return
                self._json(201, rule.as_dict())
            else:
                self._json(405, {"message": "GET, POST or DELETE"})

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path.startswith("/_faults"):
                self._control(body)
                return
            respond = book.fault_for("aws", aws_request_facts(self.command, self.path, self.headers, body))
            if respond is not None and respond.get("reset"):
                self.close_connection = True
                reset(self.connection)
                return
            if respond is not None:
                self.wfile.write(response_bytes(respond, close=False))
                return
            self._forward(body)

        def _forward(self, body: bytes) -> None:
            upstream = http.client.HTTPConnection("127.0.0.1", config.gateway_port, timeout=90)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                reply = upstream.getresponse()
                content = reply.read()
            finally:
                upstream.close()
            self.send_response(reply.status)
            for name, value in reply.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler


# Registry proxy ------------------------------------------------------------------------------------
@dataclass
class HttpHead:
    raw: bytes
    start_line: str
    headers: dict[str, str]  # lower-cased names

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.strip().isdigit() else None

    @property
    def wants_close(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


def read_head(stream: BinaryIO) -> HttpHead | None:
    """The start line and headers of the next message; None when the peer closed between messages."""
    lines: list[bytes] = []
    size = 0
    while True:
        line = stream.readline(MAX_HEAD_BYTES)
        if not line:
            if lines:
                raise ConnectionError("connection closed inside a message head")
            return None
        size += len(line)
        if size > MAX_HEAD_BYTES:
            raise ConnectionError("message head too large")
        if line in (b"\r\n", b"\n"):
            if not lines:
                continue  # tolerated blank lines between messages
            break
        lines.append(line)
    text = [line.decode("latin-1").rstrip("\r\n") for line in lines]
    headers: dict[str, str] = {}
    for header in text[1:]:
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HttpHead(b"".join(lines) + b"\r\n", text[0], headers)


def body_pieces(stream: BinaryIO, head: HttpHead, *, until_close: bool) -> Iterator[bytes]:
    """The message body as it arrives, in its wire form (chunk framing kept), without buffering it whole."""
    if head.chunked:
        while True:
            size_line = stream.readline(MAX_HEAD_BYTES)
            if not size_line:
                raise ConnectionError("connection closed inside a chunked body")
            yield size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line that ends the body
                    trailer = stream.readline(MAX_HEAD_BYTES)
                    if not trailer:
                        raise ConnectionError("connection closed inside chunked trailers")
                    yield trailer
                    if trailer in (b"\r\n", b"\n"):
                        return
            yield from _exactly(stream, size + 2, "a chunk")  # the chunk's data and its CRLF
    elif head.content_length is not None:
        yield from _exactly(stream, head.content_length, "a body")
    elif until_close:
        while piece := stream.read1(COPY_BYTES):  # type: ignore[attr-defined]
            yield piece


def _exactly(stream: BinaryIO, size: int, what: str) -> Iterator[bytes]:
    """`size` bytes of `stream`, in pieces; a connection closed before them is an error."""
    remaining = size
    while remaining:
        piece = stream.read(min(remaining, COPY_BYTES))
        if not piece:
            raise ConnectionError(f"connection closed inside {what}")
        remaining -= len(piece)
        yield piece


def registry_request_facts(head: HttpHead, registry: Registry) -> dict[str, str]:
    method, _, rest = head.start_line.partition(" ")
    path = urlsplit(rest.rsplit(" ", 1)[0]).path
    found = REGISTRY_PATH.match(path)
    return {
        "method": method,
        "path": path,
        "repository": found["repository"] if found else "",
        "user_agent": head.headers.get("user-agent", ""),
        "registry": registry.host,
    }


class RegistryProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: StackConfig, registry: Registry, book: FaultBook) -> None:
        self.config, self.registry, self.book = config, registry, book
        self.server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_tls.load_cert_chain(config.fault_cert, config.fault_key)
        # The hop to the registry stays on loopback; its certificate names the address's port 443 only.
        self.upstream_tls = ssl.create_default_context(cafile=str(config.tls_dir / "registry.crt"))
        self.upstream_tls.check_hostname = False
        self.upstream_tls.verify_mode = ssl.CERT_NONE
        super().__init__((registry.address, 443), RegistryProxyHandler)


class RegistryProxyHandler(socketserver.BaseRequestHandler):
    server: RegistryProxyServer

    def handle(self) -> None:
        raw: socket.socket = self.request
        raw.settimeout(CONNECTION_TIMEOUT_SECONDS)
        try:
            client = self.server.server_tls.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            return
        stream = client.makefile("rb")
        try:
            while self.exchange(client, stream):
                pass
        except (OSError, ValueError, ConnectionError) as error:
            print(f"registry {self.server.registry.host}: connection ended: {error}", flush=True)
        finally:
            stream.close()
            client.close()

    def exchange(self, client: ssl.SSLSocket, stream: BinaryIO) -> bool:
        """One request and its response; whether the client connection stays open."""
        head = read_head(stream)
        if head is None:
            return False
        facts = registry_request_facts(head, self.server.registry)
        respond = self.server.book.fault_for("registry", facts)
        if respond is not None:
            for _ in body_pieces(stream, head, until_close=False):
                pass  # read the request, so the client waits for our answer rather than failing to send
            if respond.get("reset"):
                reset(client)
                return False
            client.sendall(response_bytes(respond, close=True))
            return False
        return self.forward(client, stream, head, facts["method"])

    def forward(self, client: ssl.SSLSocket, stream: BinaryIO, head: HttpHead, method: str) -> bool:
        registry = self.server.registry
        with socket.create_connection((registry.address, registry.port), timeout=CONNECTION_TIMEOUT_SECONDS) as raw:
            upstream = self.server.upstream_tls.wrap_socket(raw, server_hostname=registry.host)
            upstream.sendall(head.raw)
            for piece in body_pieces(stream, head, until_close=False):
                upstream.sendall(piece)
            upstream_stream = upstream.makefile("rb")
            reply = read_head(upstream_stream)
            if reply is None:
                raise ConnectionError("the registry closed the connection without answering")
            client.sendall(reply.raw)
            status = int(reply.start_line.split(" ")[1])
            if method != "HEAD" and status not in (204, 304) and status >= 200:
                framed = reply.chunked or reply.content_length is not None
                for piece in body_pieces(upstream_stream, reply, until_close=not framed):
                    client.sendall(piece)
                if not framed:
                    return False  # the body ended with the connection: so must ours
            upstream_stream.close()
            upstream.close()
        return not (head.wants_close or reply.wants_close)


def serve(config: StackConfig) -> None:
    book = FaultBook()
    servers: list[socketserver.BaseServer] = []
    for registry in config.registries:
        if registry.behind_fault_proxy:
            servers.append(RegistryProxyServer(config, registry, book))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    serve_http(
        config.fault_proxy_port,
        make_aws_handler(config, book),
        f"fault proxies: AWS on {config.fault_proxy_url}, registries of {config.fault_region}",
    )


if __name__ == "__main__":
    serve(StackConfig.load())
