"""``streamchaos synth``: produce the synthetic feature stream, with a progress bar."""

from __future__ import annotations

import sys
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamchaos.errors import BridgeError
from streamchaos.synth import Generator, encoder, expected_total, paced


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=15).topics:
        return
    for fut in admin.create_topics([NewTopic(topic, num_partitions=partitions)]).values():
        try:
            fut.result(30)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BridgeError(f"cannot create topic {topic}: {exc}") from exc


def run_synth(args: Any, bootstrap: str, registry_url: str) -> int:
    from rich.progress import Progress

    ensure_topic(bootstrap, args.topic, args.partitions)
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
                _produce(producer, args.topic, value, encode(value), on_delivery)
            producer.poll(0)
            sent += len(batch)
            progress.update(task, advance=len(batch))
    left = producer.flush(60)
    print(f"produced {sent - left - len(failed)} records to {args.topic}", file=sys.stderr)
    return 1 if left or failed else 0


def _produce(producer: Any, topic: str, value: dict[str, Any], data: bytes, cb: Any) -> None:
    while True:
        try:
            producer.produce(topic, data, value["user_id"].encode(), on_delivery=cb)
            return
        except BufferError:
            producer.poll(0.05)
