"""``streamchaos score``: read episodes from the ledger and alerts from a file, a topic or
Prometheus, score them, print the table and write JSON and a picture."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from streamchaos.errors import ConfigError, StreamChaosError
from streamchaos.scoring import (
    Alert,
    Episode,
    Scorecard,
    alerts_from_jsonl,
    alerts_from_prometheus,
    episodes_from_ledger,
    score,
)


def load_alerts(args: Any, episodes: list[Episode]) -> list[Alert]:
    if args.alerts:
        try:
            return alerts_from_jsonl(Path(args.alerts).read_text().splitlines())
        except OSError as exc:
            raise ConfigError(f"--alerts: cannot read {args.alerts}: {exc.strerror}") from exc
    if args.alerts_topic:
        from streamchaos.kafkatools import read_all

        if not args.bootstrap_servers:
            raise ConfigError("--bootstrap-servers: required with --alerts-topic")
        msgs = read_all(args.bootstrap_servers, args.alerts_topic)
        return alerts_from_jsonl((m.value() or b"").decode(errors="replace") for m in msgs)
    if args.prometheus:
        return prometheus_alerts(args.prometheus, episodes, args.max_delay, args.step)
    raise ConfigError("give one of --alerts FILE, --alerts-topic TOPIC, --prometheus URL")


QUERY = 'ALERTS{alertstate="firing", source!="streamchaos"}'


def prometheus_alerts(url: str, episodes: list[Episode], pad: float, step: float) -> list[Alert]:
    """``ALERTS{alertstate="firing"}`` over the run, from Prometheus's HTTP API.

    Alerts labelled ``source="streamchaos"`` (rules over the injector's own counters, as in
    configs/alerts.yml) are ground truth, not detections, and are left out.
    """
    if not episodes:
        return []
    start = min(e.start for e in episodes) - 60
    end = max(e.end for e in episodes) + pad
    query = urllib.parse.urlencode({"query": QUERY, "start": start, "end": end, "step": step})
    try:
        with urllib.request.urlopen(
            f"{url.rstrip('/')}/api/v1/query_range?{query}", timeout=30
        ) as resp:
            body = json.load(resp)
    except OSError as exc:
        raise StreamChaosError(f"--prometheus: cannot query {url}: {exc}") from exc
    return alerts_from_prometheus(body, step=step)


def score_options(*argv: str) -> Any:
    """``score``'s options from command-line words, defaults included (for code and tests)."""
    from streamchaos.cli import build_parser

    return build_parser().parse_args(["score", *argv])


def run_score(args: Any) -> tuple[Scorecard, list[Alert]]:
    from streamchaos.cli import load_ledger

    entries = load_ledger(args)
    if args.experiment:
        entries = [e for e in entries if e.get("experiment") == args.experiment]
    episodes = episodes_from_ledger(entries)
    if args.fault:
        episodes = [e for e in episodes if e.fault in args.fault or e.type in args.fault]
    alerts = load_alerts(args, episodes)
    card = score(
        episodes,
        alerts,
        max_delay=args.max_delay,
        early=args.early,
        warmup=args.warmup,
        run_start=args.run_start,
        run_end=args.run_end,
    )
    print(card.table())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(card.to_dict(), indent=2))
    if args.png:
        from streamchaos.timeline import write_timeline

        write_timeline(card, alerts, Path(args.png))
    return card, alerts
