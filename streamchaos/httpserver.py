"""The bridge's small HTTP side door: ``/metrics`` now, control endpoints later.

prometheus_client's own server only answers GET; a ``ThreadingHTTPServer`` of our own
lets the same port serve POST control routes. It is bound to 127.0.0.1 by default.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Route = Callable[[], tuple[int, str]]


class ControlServer:
    """Serves ``GET /metrics`` plus any extra ``(method, path) -> handler`` routes."""

    def __init__(self, registry: CollectorRegistry, bind: str, port: int) -> None:
        self.registry = registry
        self.routes: dict[tuple[str, str], Route] = {}
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer((bind, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="streamchaos-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def add(self, method: str, path: str, handler: Route) -> None:
        self.routes[(method, path)] = handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(server: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            if method == "GET" and path == "/metrics":
                body = generate_latest(server.registry)
                self._send(200, body, CONTENT_TYPE_LATEST)
                return
            route = server.routes.get((method, path))
            if route is None:
                self._send(404, b"not found\n", "text/plain")
                return
            status, text = route()
            self._send(status, text.encode() + b"\n", "text/plain")

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)

    return Handler
