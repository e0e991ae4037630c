"""The bridge's small HTTP side door: ``/metrics``, the probes and the control API.

prometheus_client's own server only answers GET; a ``ThreadingHTTPServer`` of our own
lets the same port serve the control routes (``POST /pause``, ``GET /faults``,
``PUT /routes/{source}/faults/{name}``...). It is bound to 127.0.0.1 by default. With a
``token``, every route but ``/metrics`` and the probes (``open`` routes) needs
``Authorization: Bearer <token>`` (401 without one, 403 with another, compared in
constant time).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streamchaos.errors import ConfigError, StreamChaosError

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # bytes a request body may have (a fault's config is a few hundred)
LOG_EVERY = 60.0  # seconds between log lines about one client's refused requests


class HttpError(StreamChaosError):
    """A request that cannot be served now; ``status`` is the answer's."""

    status = 500


@dataclass(frozen=True)
class Request:
    """What a route handler is given: the path's ``{parameters}``, the body, who asked."""

    params: dict[str, str]
    body: bytes
    client: str

    def json(self) -> Any:
        """The body as JSON; a body that is not is a ``ConfigError`` (400)."""
        try:
            return json.loads(self.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"the request body is not JSON: {exc}") from exc


Answer = tuple[int, Any]  # status, and text or a JSON-able value
Handler = Callable[[Request], Answer]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    open: bool


class ControlServer:
    """Serves ``GET /metrics`` plus routes added with ``add``."""

    def __init__(
        self, registry: CollectorRegistry, bind: str, port: int, token: str | None = None
    ) -> None:
        self.registry = registry
        self.routes: list[_Route] = []
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

    def add(self, method: str, path: str, handler: Handler, open: bool = False) -> None:
        """``path`` may hold ``{name}`` parts (one path segment each, URL-decoded);
        ``open``: served without the token (probes)."""
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        self.routes.append(_Route(method, re.compile(f"^{regex}$"), handler, open))

    def match(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | int:
        """The route and its parameters, or 404 (no such path) / 405 (another method)."""
        status = 404
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
            status = 405
        return status

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def refusal(self, method: str, path: str, authorization: str | None, client: str) -> int | None:
        """401 or 403 when a request lacks the token, else None; each (client, answer) is
        logged at most once a minute, never with what was sent."""
        if self._token is None:
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


def _make_handler(server: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 30  # seconds a client may take to send its request (a short body waits)

        def _answer(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            if method == "GET" and path == "/metrics":
                self._send(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                return
            found = server.match(method, path)
            if isinstance(found, int):
                allowed = ", ".join(r.method for r in server.routes if r.pattern.match(path))
                if found == 405:
                    self._reply(405, {"error": f"{method} {path}: use {allowed}"}, allowed)
                else:
                    self._reply(404, {"error": f"{path}: no such endpoint"})
                return
            route, params = found
            client = self.client_address[0]
            if not route.open:
                refused = server.refusal(method, path, self.headers.get("Authorization"), client)
                if refused is not None:
                    self.send_response(refused)
                    if refused == 401:
                        self.send_header("WWW-Authenticate", 'Bearer realm="streamchaos"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._reply(400, {"error": "Content-Length is not a number"})
                return
            if length > MAX_BODY:
                self._reply(413, {"error": f"the body is over {MAX_BODY} bytes"})
                return
            body = self.rfile.read(length) if length > 0 else b""
            try:
                status, answer = route.handler(Request(params, body, client))
            except (ConfigError, HttpError) as exc:  # the request is wrong: say which field
                status, answer = getattr(exc, "status", 400), {"error": str(exc)}
            except Exception as exc:  # a bug must not leave the client without an answer
                log.exception("control: %s %s failed", method, path)
                status, answer = 500, {"error": f"{type(exc).__name__}: {exc}"}
            self._reply(status, answer)

        def _reply(self, status: int, answer: Any, allow: str | None = None) -> None:
            if isinstance(answer, str):
                self._send(status, answer.encode() + b"\n", "text/plain; charset=utf-8")
            else:
                text = json.dumps(answer, indent=1, sort_keys=True) + "\n"
                self._send(status, text.encode(), "application/json", allow)

        def _send(self, status: int, body: bytes, ctype: str, allow: str | None = None) -> None:
            self.send_response(status)
            if allow:
                self.send_header("Allow", allow)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def do_PUT(self) -> None:
            self._answer("PUT")

        def do_DELETE(self) -> None:
            self._answer("DELETE")

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)

    return Handler
