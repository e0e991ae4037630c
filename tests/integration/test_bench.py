"""The loops ``make bench`` times do what docs/benchmarks.md says of them, on the real
broker: each reads every record of its source and delivers one output for it (a loop
that falls short raises instead of reporting a rate), and the plain loops, the baseline,
copy records unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks import run as bench
from streamchaos.kafkatools import create_topics, delete_topics, read_all, unique_name

pytestmark = pytest.mark.integration
N = 600


@pytest.fixture(scope="module")
def sources(kafka_bootstrap: str, schema_registry_url: str) -> Iterator[dict[str, str]]:
    """Both bench sources with ``N`` records each, filled once for the module."""
    topics = {bench.AVRO: unique_name("bench"), bench.JSON: unique_name("bench-json")}
    create_topics(kafka_bootstrap, topics.values(), bench.PARTITIONS)
    try:
        bench.fill(kafka_bootstrap, schema_registry_url, topics, N)
        yield topics
    finally:
        delete_topics(kafka_bootstrap, list(topics.values()))


PLAIN = [*bench.PLAIN.values(), *bench.PLAIN_GC.values()]


@pytest.mark.parametrize("name", [name for name in bench.SCENARIOS if name not in PLAIN])
def test_every_bridge_loop_delivers_every_record(name, sources, topic_factory, kafka_bootstrap):
    loop = bench.SCENARIOS[name]
    shadow = topic_factory(bench.PARTITIONS, prefix="bench", suffix=".shadow")
    assert loop.run(kafka_bootstrap, sources[loop.source], shadow, N) > 0
    assert len(read_all(kafka_bootstrap, shadow, expect=N, strict=True)) == N


@pytest.mark.parametrize("name", PLAIN)
def test_the_plain_loops_copy_every_record_unchanged(name, sources, topic_factory, kafka_bootstrap):
    loop = bench.SCENARIOS[name]
    shadow = topic_factory(bench.PARTITIONS, prefix="bench", suffix=".shadow")
    assert loop.run(kafka_bootstrap, sources[loop.source], shadow, N) > 0

    def records(topic: str, expect: int | None = None) -> list[tuple]:
        msgs = read_all(kafka_bootstrap, topic, expect=expect, strict=True)
        return sorted((m.partition(), m.key(), m.value(), m.headers()) for m in msgs)

    assert records(shadow, expect=N) == records(sources[loop.source])
