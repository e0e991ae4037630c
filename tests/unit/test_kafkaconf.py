import re
import socket

import pytest

from streamchaos.config import config_from_dict
from streamchaos.errors import ConfigError
from streamchaos.kafkaconf import consumer_conf, producer_conf


def make(**kafka):
    return config_from_dict(
        {"experiment": "e", "kafka": kafka, "routes": [{"source": "a", "shadow": "a.shadow"}]},
        env={},
    )


def test_tuned_defaults_and_safety_keys():
    conf = consumer_conf(make())
    assert conf["fetch.queue.backoff.ms"] == 20
    assert conf["partition.assignment.strategy"] == "cooperative-sticky"
    assert conf["group.id"] == "streamchaos.e"
    assert producer_conf(make())["enable.idempotence"] is True


def test_user_properties_win_but_not_over_commit_safety():
    cfg = make(
        consumer={"fetch.queue.backoff.ms": 50, "enable.auto.commit": True},
        producer={"linger.ms": 20},
    )
    conf = consumer_conf(cfg)
    assert conf["fetch.queue.backoff.ms"] == 50
    assert conf["enable.auto.commit"] is False
    assert producer_conf(cfg)["linger.ms"] == 20


def test_the_producer_reports_what_is_asked_and_keeps_the_order():
    """Reports come for the records produced with a callback, in order: the commit rests
    on both (``bridge/checkpoint.py``)."""
    conf = producer_conf(make())
    assert conf["delivery.report.only.error"] is False and conf["enable.idempotence"] is True


def test_a_shadow_cluster_takes_the_producer_and_topic_creation():
    from streamchaos.kafkaconf import admin_conf, shadow_admin_conf

    shadow = {
        "bootstrap_servers": "shadow:9092",
        "security": {"protocol": "SSL", "ssl_ca_location": "/ca.pem"},
        "producer": {"linger.ms": 7},
    }
    cfg = make(bootstrap_servers="prod:9092", shadow=shadow)
    producer = producer_conf(cfg)
    assert producer["bootstrap.servers"] == "shadow:9092" and producer["linger.ms"] == 7
    assert producer["security.protocol"] == "SSL" and producer["ssl.ca.location"] == "/ca.pem"
    assert consumer_conf(cfg)["bootstrap.servers"] == "prod:9092"
    assert consumer_conf(cfg)["security.protocol"] == "PLAINTEXT"
    assert admin_conf(cfg)["bootstrap.servers"] == "prod:9092"  # only read there
    assert shadow_admin_conf(cfg)["bootstrap.servers"] == "shadow:9092"
    assert shadow_admin_conf(make()) == admin_conf(make())  # one cluster: the same


@pytest.mark.parametrize(
    ("kafka", "message"),
    [
        (
            {"shadow": {"bootstrap_servers": "s:9092"}, "producer": {"linger.ms": 5}},
            "kafka.producer: with kafka.shadow the bridge produces only to the shadow cluster",
        ),
        (
            {"shadow": {"bootstrap_servers": "s:9092", "producer": {"acks": 1}}},
            "kafka.shadow.producer.acks: '1' would let offsets be committed",
        ),
        (
            {"shadow": {"bootstrap_servers": "s:9092", "producer": {"ssl.key.location": "k"}}},
            "kafka.shadow.producer.ssl.key.location: set it as security.ssl_key_location",
        ),
        (
            {"shadow": {"bootstrap_servers": "s:9092", "security": {"sasl_username": "u"}}},
            "kafka.shadow.security.sasl_username: protocol PLAINTEXT does not use it",
        ),
    ],
    ids=["producer on the source", "acks", "managed property", "sasl without protocol"],
)
def test_shadow_cluster_settings_are_checked_like_the_source_ones(kafka, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make(**kafka)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kafka": {"shadow": {"bootstrap_servers": "s:9092"}}},
         "delivery: exactly-once cannot span two"),
        ({"kafka": {"producer": {"transactional.id": "x"}}},
         "kafka.producer.transactional.id: 'x' with delivery: exactly-once"),
        ({"kafka": {"producer": {"max.in.flight.requests.per.connection": 10}}},
         "kafka.producer.max.in.flight.requests.per.connection: 10"),
        ({"kafka": {"producer": {"transaction.timeout.ms": 1000}}},
         "transaction.timeout.ms: 1000 must exceed bridge.commit_interval"),
    ],
    ids=["two clusters", "transactional.id", "in flight", "timeout"],
)  # fmt: skip
def test_exactly_once_refuses_what_it_cannot_keep_naming_the_field(changes, message):
    raw = {"experiment": "e", "delivery": "exactly-once", "kafka": changes.get("kafka", {})}
    raw["routes"] = [{"source": "a", "shadow": "a.shadow", "faults": changes.get("faults", [])}]
    with pytest.raises(ConfigError, match=message):
        config_from_dict(raw, env={})


def test_exactly_once_makes_the_producer_transactional_with_a_stable_id():
    raw = {"experiment": "e", "delivery": "exactly-once"}
    faults = [{"type": "drop"}, {"type": "corrupt", "fields": ["x"]}, {"type": "duplicate"}]
    raw["routes"] = [{"source": "a", "shadow": "a.shadow", "format": "json", "faults": faults}]
    conf = producer_conf(config_from_dict(raw, env={}))
    assert conf["transactional.id"] == f"streamchaos.e.{socket.gethostname()}"
    assert conf["transaction.timeout.ms"] == 10_000
    raw["kafka"] = {"transactional_id": "member-1", "producer": {"transaction.timeout.ms": 30000}}
    conf = producer_conf(config_from_dict(raw, env={}))
    assert (conf["transactional.id"], conf["transaction.timeout.ms"]) == ("member-1", 30000)
    assert "transactional.id" not in producer_conf(
        config_from_dict(raw | {"delivery": "at-least-once"}, env={})
    )


def test_a_registry_url_with_a_password_is_refused():
    raw = {"experiment": "e", "schema_registry": {"url": "https://u:hunter2@sr:8081"}}
    raw["routes"] = [{"source": "a", "shadow": "a.shadow"}]
    with pytest.raises(ConfigError, match=r"schema_registry\.url: holds a password") as err:
        config_from_dict(raw, env={})
    assert "hunter2" not in str(err.value)
