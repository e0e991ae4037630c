"""Wire framing, schema mutations, codecs and the registry's fail-fast backoff."""

from __future__ import annotations

import json
import math
import socket

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streamchaos.bridge.setup import preload_schemas
from streamchaos.codec import (
    AvroCodec,
    JsonCodec,
    ParsedSchema,
    Registry,
    RegistryUnavailable,
    Undecodable,
    mutate,
)
from streamchaos.codec.wire import frame, split
from streamchaos.config import config_from_dict

RAW = {
    "type": "record",
    "name": "R",
    "fields": [
        {"name": "a", "type": "double"},
        {"name": "c", "type": {"type": "enum", "name": "C", "symbols": ["X", "Y"]}},
        {"name": "n", "type": ["null", "long"], "default": None},
    ],
}


@pytest.mark.parametrize(
    ("data", "reason"),
    [(None, "tombstone"), (b"", "empty"), (b"\x01abcdef", "bad_magic"), (b"\x00\x01", "too_short")],
)
def test_split_names_the_reason(data, reason):
    with pytest.raises(Undecodable) as info:
        split(data)
    assert info.value.reason == reason


def test_frame_split_round_trip():
    assert split(frame(258, b"payload")) == (258, b"payload")


def test_mutations_leave_the_input_alone():
    before = repr(RAW)
    assert [f["name"] for f in mutate.drop_field(RAW, "a")["fields"]] == ["c", "n"]
    assert mutate.rename_field(RAW, "a", "b")["fields"][0]["name"] == "b"
    assert mutate.retype_field(RAW, "a", "string")["fields"][0]["type"] == "string"
    assert mutate.retype_field(RAW, "n", "string")["fields"][2]["type"] == ["null", "string"]
    assert mutate.make_nullable(RAW, "a")["fields"][0]["type"] == ["null", "double"]
    assert mutate.add_enum_symbol(RAW, "c", "Z")["fields"][1]["type"]["symbols"] == ["X", "Y", "Z"]
    with pytest.raises(TypeError):
        mutate.add_enum_symbol(RAW, "a", "Z")
    assert repr(RAW) == before
    assert mutate.type_name(RAW["fields"][2]["type"]) == "long"
    assert mutate.nullable(RAW["fields"][2]["type"]) and not mutate.nullable("double")


def test_local_schema_avro_round_trip_and_strictness():
    schema = ParsedSchema.of(RAW)
    codec = AvroCodec(None, schema)
    value = {"a": math.inf, "c": "Y", "n": 5}
    data = codec.encode(value, schema, None)
    assert codec.decode(data).value == value
    with pytest.raises(Undecodable, match="trailing"):
        codec.decode(data + b"\x00")
    with pytest.raises(Undecodable) as info:
        codec.decode(data[:3])
    assert info.value.reason == "avro_error"


def test_json_codec():
    codec = JsonCodec()
    assert codec.decode(codec.encode({"x": 1}, None, None)).value == {"x": 1}
    with pytest.raises(Undecodable) as info:
        codec.decode(b"{nope")
    assert info.value.reason == "not_json"


def test_registry_codec_with_in_memory_registry():
    client = SchemaRegistryClient.new_client({"url": "mock://unit"})
    registry = Registry("mock://unit", client=client)
    schema_id = registry.register("t-value", RAW)
    codec = AvroCodec(registry)
    data = codec.encode({"a": 1.0, "c": "X", "n": None}, registry.schema(schema_id), schema_id)
    decoded = codec.decode(data)
    assert decoded.schema_id == schema_id and decoded.value["c"] == "X"
    assert registry.register("t-value", RAW) == schema_id  # cached, not re-registered


class Down:
    calls = 0

    def get_schema(self, schema_id):
        Down.calls += 1
        raise ConnectionError("refused")


def test_unreachable_registry_fails_fast_during_backoff():
    now = [0.0]
    registry = Registry("http://x", client=Down(), backoff=5, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(Undecodable) as info:
            registry.schema(1)
        assert info.value.reason == "registry_unavailable"
    assert Down.calls == 1
    now[0] = 6
    with pytest.raises(Undecodable):
        registry.schema(1)
    assert Down.calls == 2


def test_preload_of_an_unreachable_registry_starts_no_backoff():
    """A registry that is down when the bridge starts is asked again by the first record."""
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    registry = Registry(f"http://127.0.0.1:{port}", timeout=2, backoff=60)
    with pytest.raises(RegistryUnavailable):
        registry.preload("t-value")
    with pytest.raises(RegistryUnavailable) as info:
        registry.schema(1)
    assert "backing off" not in str(info.value)  # it asked, rather than waiting 60 s


def test_preload_caches_the_latest_schema_and_skips_unknown_subjects():
    client = SchemaRegistryClient.new_client({"url": "mock://preload"})
    registry = Registry("mock://preload", client=client)
    schema_id = registry.register("t-value", RAW)
    fresh = Registry("mock://preload", client=client)
    assert fresh.preload("t-value") == schema_id
    assert fresh.preload("no-such-topic-value") is None
    fresh.client = Down()  # what was loaded ahead needs no registry
    assert fresh.schema(schema_id).raw == RAW


class Refusing:
    def get_latest_version(self, subject):
        raise SchemaRegistryError(401, 40101, "Unauthorized")


def test_preload_refused_by_the_registry_is_no_missing_subject():
    """A 401 or a 5xx is not "no such subject": it ends preloading, loudly."""
    with pytest.raises(RegistryUnavailable, match="Unauthorized"):
        Registry("http://x", client=Refusing()).preload("t-value")


class Recorder:
    """``Registry.preload`` as ``_preload_schemas`` sees it."""

    def __init__(self, fail: bool = False) -> None:
        self.asked: list[str] = []
        self.fail = fail

    def preload(self, subject: str) -> int:
        self.asked.append(subject)
        if self.fail:
            raise RegistryUnavailable("down")
        return 1


def _routes(tmp_path):
    schema = tmp_path / "s.avsc"
    schema.write_text(json.dumps(RAW))
    corrupt = {"type": "corrupt", "mode": "nan", "fields": ["a"]}
    raw = {
        "experiment": "u",
        "kafka": {"bootstrap_servers": "x", "group_id": "g"},
        "schema_registry": {"url": "http://x"},
        "routes": [
            {"source": "drifted", "shadow": "s1.shadow", "format": "avro", "faults": [corrupt]},
            {
                "source": "delayed",
                "shadow": "s2.shadow",
                "format": "avro",
                "faults": [{"type": "delay"}],
            },
            {"source": "js", "shadow": "s3.shadow", "format": "json", "faults": [corrupt]},
            {
                "source": "local",
                "shadow": "s4.shadow",
                "format": "avro",
                "schema_file": str(schema),
                "faults": [corrupt],
            },
            {"source": "plain", "shadow": "s5.shadow", "format": "avro"},
            {"source": "second", "shadow": "s6.shadow", "format": "avro", "faults": [corrupt]},
        ],
    }
    return config_from_dict(raw, env={}).routes


def test_only_routes_that_decode_registry_avro_are_preloaded(tmp_path):
    registry = Recorder()
    preload_schemas(registry, _routes(tmp_path), budget=60)  # type: ignore[arg-type]
    assert registry.asked == ["drifted-value", "second-value"]


def test_an_unreachable_registry_or_a_spent_budget_ends_preloading(tmp_path):
    down = Recorder(fail=True)
    preload_schemas(down, _routes(tmp_path), budget=60)  # type: ignore[arg-type]
    assert down.asked == ["drifted-value"]
    spent = Recorder()
    preload_schemas(spent, _routes(tmp_path), budget=0)  # type: ignore[arg-type]
    assert spent.asked == []
