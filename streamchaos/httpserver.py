"""The bridge's small HTTP side door: ``/metrics``, the probes and the control endpoints.

prometheus_client's own server only answers GET; a ``ThreadingHTTPServer`` of our own
lets the same port serve POST control routes. It is bound to 127.0.0.1 by default. With a
``token``, every POST needs ``Authorization: Bearer <token>`` (401 without one, 403 with
another, compared in constant time); GET routes stay open for Prometheus and probes.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Route = Callable[[], tuple[int, str]]


class ControlServer:
    """Serves ``GET /metrics`` plus any extra ``(method, path) -> handler`` routes."""

    def __init__(
        self, registry: CollectorRegistry, bind: str, port: int, token: str | None = None
    ) -> None:
        self.registry = registry
        self.routes: dict[tuple[str, str], Route] = {}
        self._token = None if token is None else token.encode()
        self._refused: dict[tuple[str, int], float] = {}  # (client, status) -> last logged
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

    def refusal(self, method: str, path: str, authorization: str | None, client: str) -> int | None:
        """401 or 403 when a state-changing request lacks the token, else None; each
        (client, answer) is logged at most once a minute, never with what was sent."""
        if method == "GET" or self._token is None:
            return None
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            status = 401
        elif hmac.compare_digest(given.strip().encode(), self._token):
            return None
        else:
            status = 403
        now = time.monotonic()
        if len(self._refused) > 10_000:  # many clients: forget the ones logged long ago
            self._refused = {k: t for k, t in self._refused.items() if now - t < LOG_EVERY}
        if now - self._refused.get((client, status), -LOG_EVERY) >= LOG_EVERY:
            self._refused[(client, status)] = now
            why = "no bearer token" if status == 401 else "a wrong token"
            log.warning(
                "control: %s %s from %s refused (%d: %s)", method, path, client, status, why
            )
        return status


LOG_EVERY = 60.0  # seconds between log lines about one client's refused requests


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
            auth = self.headers.get("Authorization")
            refused = server.refusal(method, path, auth, self.client_address[0])
            if refused is not None:
                self.send_response(refused)
                if refused == 401:
                    self.send_header("WWW-Authenticate", 'Bearer realm="streamchaos"')
                self.send_header("Content-Length", "0")
                self.end_headers()
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
