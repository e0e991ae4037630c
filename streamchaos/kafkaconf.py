"""Config → librdkafka properties, in one place.

The defaults here are the ones the benchmarks showed matter (docs/performance-facts.md):
``fetch.queue.backoff.ms`` at librdkafka's 1000 ms starves a fast Python loop, and the
producer's ``linger.ms`` trades a few ms of latency for batching. User-given properties
under ``kafka.consumer`` / ``kafka.producer`` always win.
"""

from __future__ import annotations

from typing import Any

from streamchaos.config import Config
from streamchaos.config.clients import Scalar, SecuritySettings
from streamchaos.config.delivery import TRANSACTION_TIMEOUT_MS, transactional_id

CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
    "fetch.queue.backoff.ms": 20,
    "session.timeout.ms": 10000,
    "enable.partition.eof": False,
}

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "queue.buffering.max.messages": 500000,
}

# Keys the bridge relies on for "nothing lost": a user may not turn these around.
CONSUMER_FIXED: dict[str, Any] = {"enable.auto.commit": False, "enable.auto.offset.store": False}
PRODUCER_FIXED: dict[str, Any] = {"enable.idempotence": True, "delivery.report.only.error": False}


def security_conf(cfg: Config) -> dict[str, Any]:
    """librdkafka security properties of the source cluster, secrets resolved."""
    return _security(cfg.kafka.security, "kafka.security")


def _security(sec: SecuritySettings, where: str) -> dict[str, Any]:
    """librdkafka security properties, secrets resolved from the environment or files."""
    conf: dict[str, Any] = {"security.protocol": sec.protocol}
    if sec.protocol.startswith("SASL"):
        assert sec.sasl_password is not None
        conf["sasl.mechanism"] = sec.sasl_mechanism
        conf["sasl.username"] = sec.sasl_username
        conf["sasl.password"] = sec.sasl_password.resolve(
            f"{where}.sasl_password"
        ).get_secret_value()
    for name in ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location"):
        value = getattr(sec, name)
        if value is not None:
            conf[name.replace("_", ".")] = str(value)
    if sec.ssl_key_password is not None:
        conf["ssl.key.password"] = sec.ssl_key_password.resolve(
            f"{where}.ssl_key_password"
        ).get_secret_value()
    return conf


def _shadow_cluster(cfg: Config) -> tuple[dict[str, Any], dict[str, Scalar]]:
    """Connection properties and extra producer properties of the cluster the shadows
    live on: ``kafka.shadow`` when given, else the source cluster."""
    shadow = cfg.kafka.shadow
    if shadow is None:
        conn = {"bootstrap.servers": cfg.kafka.bootstrap_servers, **security_conf(cfg)}
        return conn, cfg.kafka.producer
    conn = {"bootstrap.servers": shadow.bootstrap_servers}
    return conn | _security(shadow.security, "kafka.shadow.security"), shadow.producer


def consumer_conf(cfg: Config) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap.servers": cfg.kafka.bootstrap_servers}
    conf.update(security_conf(cfg))
    conf.update(CONSUMER_DEFAULTS)
    conf["group.id"] = cfg.group_id
    conf["client.id"] = f"streamchaos-{cfg.experiment}"
    conf.update(cfg.kafka.consumer)
    conf.update(CONSUMER_FIXED)
    return conf


def producer_conf(cfg: Config) -> dict[str, Any]:
    """The bridge's producer, on the shadow cluster: idempotent (records of a partition
    land in the order they were produced, which ``bridge/checkpoint.py`` relies on).
    Delivery reports come only for records produced with a callback, so most records cost
    no Python call."""
    conf, extra = _shadow_cluster(cfg)
    conf.update(PRODUCER_DEFAULTS)
    conf["client.id"] = f"streamchaos-{cfg.experiment}"
    if cfg.delivery == "exactly-once":
        conf["transaction.timeout.ms"] = TRANSACTION_TIMEOUT_MS
    conf.update(extra)
    conf.update(PRODUCER_FIXED)
    if cfg.delivery == "exactly-once":
        conf["transactional.id"] = transactional_id(cfg.experiment, cfg.kafka)
    return conf


def admin_conf(cfg: Config) -> dict[str, Any]:
    """Admin clients of the source cluster share the consumer's connection and security
    settings, nothing else (on the source cluster the bridge only reads metadata)."""
    conf: dict[str, Any] = {"bootstrap.servers": cfg.kafka.bootstrap_servers}
    conf.update(security_conf(cfg))
    for key, value in cfg.kafka.consumer.items():
        if key.startswith(("security.", "sasl.", "ssl.")):
            conf[key] = value
    return conf


def shadow_admin_conf(cfg: Config) -> dict[str, Any]:
    """The admin client that creates shadow and ledger topics: on the shadow cluster."""
    if cfg.kafka.shadow is None:
        return admin_conf(cfg)
    conf, extra = _shadow_cluster(cfg)
    return conf | {k: v for k, v in extra.items() if k.startswith(("sasl.", "ssl."))}


def registry_conf(cfg: Config) -> dict[str, Any]:
    """Extra SchemaRegistryClient properties (basic auth from a secret)."""
    auth = cfg.schema_registry.basic_auth
    if auth is None:
        return {}
    return {"basic.auth.user.info": auth.resolve("schema_registry.basic_auth").get_secret_value()}
