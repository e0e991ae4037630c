"""The bench's minimal fault loops do what docs/benchmarks.md says of them, on the real
broker: their figures mean something next to the bridge's fault rows only if they pass
every record and fault exactly 1 in 20."""

from __future__ import annotations

import io
import math

import fastavro
import pytest

from benchmarks import run as bench
from streamchaos.codec.wire import split
from streamchaos.kafkatools import produce_all, read_all
from tests.integration.conftest import origin_of

pytestmark = pytest.mark.integration
N = 600
PARSED = fastavro.parse_schema(bench.SCHEMA)


def decode(value: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(split(value)[1]), PARSED)


def run_minimal(fault, topic_factory, kafka_bootstrap, schema_registry_url):
    source = topic_factory(bench.PARTITIONS, prefix="minimal")
    shadow = topic_factory(bench.PARTITIONS, prefix="minimal", suffix=".shadow")
    schema_id = bench.register(schema_registry_url, source)
    produce_all(kafka_bootstrap, bench.records(source, N, schema_id))
    # raises unless every record was read and acknowledged, and exactly the selected ones
    # took the injected path
    bench.minimal_fault_loop(kafka_bootstrap, source, shadow, N, fault)
    sources = {(m.partition(), m.offset()): m for m in read_all(kafka_bootstrap, source)}
    shadows = read_all(kafka_bootstrap, shadow, expect=N, strict=True)
    assert sorted(origin_of(m) for m in shadows) == sorted(sources)  # each once
    return sources, shadows


def test_held_records_pass_unchanged(topic_factory, kafka_bootstrap, schema_registry_url):
    """Where a held record lands depends on the clock, so only what it carries is checked
    here; the loop itself refuses to report a rate unless exactly the selected records
    took the injected path and were acknowledged."""
    sources, shadows = run_minimal("delay", topic_factory, kafka_bootstrap, schema_registry_url)
    for m in shadows:
        assert m.value() == sources[origin_of(m)].value()


def test_one_in_twenty_gets_nan_the_rest_pass_unchanged(
    topic_factory, kafka_bootstrap, schema_registry_url
):
    sources, shadows = run_minimal("corrupt", topic_factory, kafka_bootstrap, schema_registry_url)
    nans = 0
    for m in shadows:
        src = sources[origin_of(m)]
        if src.offset() % bench.MINIMAL_EVERY == 7:
            got, want = decode(m.value()), decode(src.value())
            assert math.isnan(got.pop("amount")) and not math.isnan(want.pop("amount"))
            assert got == want
            nans += 1
        else:
            assert m.value() == src.value()
    assert nans == sum(1 for _, o in sources if o % bench.MINIMAL_EVERY == 7) > 0
