"""Reading the ground-truth journal back: a JSON Lines file or a ledger topic, every line
checked against the shapes the bridge writes (``streamchaos.ledger``)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamchaos.errors import ConfigError
from streamchaos.ledger_topic import topic_records

log = logging.getLogger("streamchaos.ledger")

KINDS = ("injection", "episode_start", "episode_end", "lineage", "plan_change", "guardrail")
EFFECTS = ("modify", "extra", "drop")
PLAN_ACTIONS = ("add", "replace", "remove", "restore", "match")
_COORDS = ("topic", "partition", "offset")


def read_ledger(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every entry of a JSON Lines ledger; a malformed line is a ``ConfigError`` naming it.

    An unparsable last line without a newline is a write torn by a crash: it is skipped with
    a warning, so the audit still runs after the crash it is meant to check.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ledger: {exc}") from exc
    named = [(f"{path}:{lineno}", line) for lineno, line in enumerate(lines, 1)]
    if named and lines[-1].strip() and not lines[-1].endswith("\n"):
        try:
            json.loads(lines[-1])
        except json.JSONDecodeError as exc:
            log.warning("%s: skipping torn last line (%s)", named[-1][0], exc.msg)
            named.pop()
    return _entries(named)


def read_ledger_topic(
    bootstrap: str, topic: str, timeout: float = 60.0, experiment: str | None = None
) -> list[dict[str, Any]]:
    """Every entry of a ledger topic (the bridge's ``ledger.topic``: one JSON line per
    record, keyed by experiment), in order; a bad record is a ``ConfigError`` naming it.
    ``experiment``: only records with that key are parsed (a topic may hold several). No
    entry at all is a ``ConfigError`` too: auditing or scoring an empty journal (a
    mistyped topic or experiment) would pass for nothing."""
    named = []
    for where, value in topic_records(bootstrap, topic, timeout, experiment):
        try:
            named.append((where, value.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}: cannot read ledger entry: {exc}") from exc
    entries = _entries(named)
    if not entries:
        of = f" of experiment {experiment!r}" if experiment is not None else ""
        raise ConfigError(f"{topic}: no ledger entries{of}")
    return entries


def _entries(named: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Ledger entries from (where, JSON text) pairs; ``where`` names a bad one."""
    entries = []
    for where, line in named:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not JSON: {exc.msg}") from exc
        problem = _entry_problem(entry)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        entries.append(entry)
    return entries


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("kind") not in KINDS:
        return f"kind must be one of {', '.join(KINDS)}, got {entry.get('kind')!r}"
    if entry["kind"] == "lineage":
        return _lineage_problem(entry)
    if entry["kind"] == "plan_change":
        detail = entry.get("detail")
        action = detail.get("action") if isinstance(detail, dict) else None
        if action not in PLAN_ACTIONS:
            return f"a plan_change needs detail.action, one of {', '.join(PLAN_ACTIONS)}"
        return None
    if entry["kind"] != "injection":
        return None
    src = entry.get("source")
    shape = [type(src.get(k)) for k in _COORDS] if isinstance(src, dict) else None
    if shape != [str, int, int]:
        return "source: an injection needs {topic: str, partition: int, offset: int}"
    if entry.get("effect") not in EFFECTS:
        return f"effect must be one of {', '.join(EFFECTS)}, got {entry.get('effect')!r}"
    return None


def _lineage_problem(entry: dict[str, Any]) -> str | None:
    src, dst = entry.get("source"), entry.get("shadow")
    segments = src.get("offsets") if isinstance(src, dict) else None
    ok = (
        isinstance(src, dict)
        and [type(src.get(k)) for k in ("topic", "partition")] == [str, int]
        and isinstance(segments, list)
        and all(isinstance(s, list) and [type(v) for v in s] == [int, int] for s in segments)
        and isinstance(dst, dict)
        and [type(dst.get(k)) for k in _COORDS] == [str, int, int]
    )
    if not ok:
        return (
            "a lineage line needs source {topic, partition, offsets: [[first, count], ...]} "
            "and shadow {topic, partition, offset}"
        )
    return None
