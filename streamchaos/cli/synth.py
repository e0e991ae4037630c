"""``streamchaos synth``: produce the synthetic feature stream (Avro), with a progress bar
on a terminal and a count of what landed."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from streamchaos.cli.common import EXIT_OK, EXIT_RUNTIME, kafka_args, need
from streamchaos.errors import ConfigError

if TYPE_CHECKING:
    from streamchaos.evaluation.synth import SynthResult


def register(sub: Any) -> None:
    p = sub.add_parser("synth", help="produce synthetic feature records (Avro) to a topic")
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, help="records to produce")
    p.add_argument("--duration", type=float, help="seconds to produce for")
    p.add_argument("--rate", type=float, help="records per second (default: as fast as possible)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--partitions", type=int, default=3, help="when the topic is created")
    kafka_args(p)
    p.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    if args.count is None and args.duration is None:
        raise ConfigError("--count or --duration: give one")
    result = produce_with_progress(
        need(args.bootstrap_servers, "--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS"),
        need(args.schema_registry, "--schema-registry", "SCHEMA_REGISTRY_URL"),
        args.topic,
        count=args.count,
        duration=args.duration,
        rate=args.rate,
        seed=args.seed,
        partitions=args.partitions,
    )
    print(f"produced {result.produced} records to {args.topic}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_RUNTIME


def produce_with_progress(
    bootstrap: str,
    registry: str,
    topic: str,
    *,
    count: int | None = None,
    duration: float | None = None,
    rate: float | None = None,
    **options: Any,
) -> SynthResult:
    """``produce_synthetic`` under a progress bar on stderr, when it is a terminal."""
    from rich.progress import Progress

    from streamchaos.evaluation.synth import expected_total, produce_synthetic

    with Progress(disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"synth → {topic}", total=expected_total(count, duration, rate))
        return produce_synthetic(
            bootstrap,
            registry,
            topic,
            count=count,
            duration=duration,
            rate=rate,
            progress=lambda n: bar.update(task, advance=n),
            **options,
        )
