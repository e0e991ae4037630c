"""``streamchaos synth``: produce the synthetic feature stream, with a progress bar."""

from __future__ import annotations

import sys
from typing import Any

from confluent_kafka import Producer

from streamchaos.kafkatools import create_topics, produce_with_room
from streamchaos.synth import Generator, encoder, expected_total, paced


def run_synth(args: Any, bootstrap: str, registry_url: str) -> int:
    from rich.progress import Progress

    create_topics(bootstrap, [args.topic], args.partitions, exist_ok=True)
    encode = encoder(registry_url, args.topic)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    failed: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    gen = Generator(args.seed)
    total = expected_total(args.count, args.duration, args.rate)
    sent = 0
    with Progress(disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"synth → {args.topic}", total=total)
        for batch in paced(gen, count=args.count, duration=args.duration, rate=args.rate):
            for value in batch:
                produce_with_room(
                    producer,
                    topic=args.topic,
                    value=encode(value),
                    key=value["user_id"].encode(),
                    on_delivery=on_delivery,
                )
            producer.poll(0)
            sent += len(batch)
            progress.update(task, advance=len(batch))
    left = producer.flush(60)
    print(f"produced {sent - left - len(failed)} records to {args.topic}", file=sys.stderr)
    return 1 if left or failed else 0
