"""Serving one of the stack's HTTP endpoints on loopback until the process is stopped."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(port: int, handler: type[BaseHTTPRequestHandler], banner: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print(banner, flush=True)
    server.serve_forever()
