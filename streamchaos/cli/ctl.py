"""``streamchaos ctl``: change a running bridge's faults over its control API.

``ctl list`` · ``ctl add -r SOURCE -f fault.yaml`` · ``ctl set -r SOURCE -f fault.yaml
[-n NAME]`` · ``ctl rm -r SOURCE -n NAME`` · ``ctl pause`` · ``ctl resume``. The URL and
token come from flags or ``STREAMCHAOS_CONTROL_URL`` / ``STREAMCHAOS_CONTROL_TOKEN``.
Exit 0 done, 1 the bridge could not be reached or failed, 2 the request was refused
(invalid fault, unknown route or fault, missing or wrong token) or bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from streamchaos.cli.common import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME
from streamchaos.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:9464"
TIMEOUT = 30.0


def register(sub: Any) -> None:
    p = sub.add_parser("ctl", help="change a running bridge's faults (its control API)")
    p.add_argument(
        "--url",
        default=os.environ.get("STREAMCHAOS_CONTROL_URL", DEFAULT_URL),
        help=f"the bridge's metrics port (default: $STREAMCHAOS_CONTROL_URL or {DEFAULT_URL})",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("STREAMCHAOS_CONTROL_TOKEN"),
        help="bearer token (default: $STREAMCHAOS_CONTROL_TOKEN)",
    )
    verbs = p.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="every route's faults, their episodes and held records")
    add = verbs.add_parser("add", help="add a fault to a route")
    add.add_argument("-r", "--route", required=True, help="the route's source topic")
    add.add_argument("-f", "--file", required=True, help="YAML file with one fault")
    put = verbs.add_parser("set", help="replace a fault of a route")
    put.add_argument("-r", "--route", required=True)
    put.add_argument("-f", "--file", required=True, help="YAML file with the new fault")
    put.add_argument("-n", "--name", help="the fault replaced (default: the file's name)")
    rm = verbs.add_parser("rm", help="remove a fault (its held records are released)")
    rm.add_argument("-r", "--route", required=True)
    rm.add_argument("-n", "--name", required=True)
    verbs.add_parser("pause", help="all faults off, held records released")
    verbs.add_parser("resume", help="faults back on")
    p.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    method, path, body = _request_of(args)
    status, answer = call(args.url, method, path, body, args.token)
    if status >= 400:
        print(f"error: {method} {path}: {status} {_text(answer)}", file=sys.stderr)
        return EXIT_CONFIG if status < 500 else EXIT_RUNTIME
    print(_shown(args.verb, answer))
    return EXIT_OK


def _request_of(args: argparse.Namespace) -> tuple[str, str, Any]:
    verb = args.verb
    if verb in ("list",):
        return "GET", "/faults", None
    if verb in ("pause", "resume"):
        return "POST", f"/{verb}", None
    route = f"/routes/{quote(args.route, safe='')}/faults"
    if verb == "rm":
        return "DELETE", f"{route}/{quote(args.name, safe='')}", None
    fault = read_fault(args.file)
    if verb == "add":
        return "POST", route, fault
    name = args.name or fault.get("name") or fault.get("type")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{args.file}: give -n NAME, or a name or type in the file")
    return "PUT", f"{route}/{quote(name, safe='')}", fault


def read_fault(path: str) -> dict[str, Any]:
    """One fault from a YAML file: a mapping, or a one-item list as in ``faults:``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold one fault (a mapping with type, name, ...)")
    return data


def call(url: str, method: str, path: str, body: Any, token: str | None) -> tuple[int, Any]:
    """One request; (status, JSON answer or text). A bridge that cannot be reached is a
    ``BridgeError`` (exit 1)."""
    from streamchaos.errors import BridgeError

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, _decode(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BridgeError(f"cannot reach the bridge at {url}: {reason}") from exc


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace").strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _text(answer: Any) -> str:
    if isinstance(answer, dict) and "error" in answer:
        return str(answer["error"])
    return answer if isinstance(answer, str) else json.dumps(answer)


def _shown(verb: str, answer: Any) -> str:
    if verb != "list" or not isinstance(answer, dict):
        return _text(answer)
    lines = [f"plan {answer.get('plan_hash')}{' (paused)' if answer.get('paused') else ''}"]
    for route in answer.get("routes", []):
        lines.append(f"{route['source']} -> {route['shadow']}")
        for f in route["faults"]:
            state = "active" if f["active"] else "idle"
            lines.append(
                f"  {f['name']:<16} {f['type']:<14} {state:<6} intensity {f['intensity']:.2f}"
                f"  injected {f['injected']}  held {f['held']}"
            )
        if not route["faults"]:
            lines.append("  (no faults)")
    return "\n".join(lines)
