"""Client settings of the experiment file: Kafka, TLS/SASL, the schema registry, secrets.

Secrets are references (an environment variable or a file), never values in the YAML;
producer settings that would weaken "a delivery report means the broker has it" fail here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from streamchaos.errors import ConfigError
from streamchaos.units import Duration

Scalar = str | int | float | bool


class Strict(BaseModel):
    """Unknown keys fail (a typo must not turn a setting off); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """Where a secret lives: an environment variable or a file — never the YAML itself."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env (a variable name) or file (a path)")
        return self

    def resolve(self, where: str) -> SecretStr:
        """The secret's value; a missing variable or unreadable file names ``where``."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(f"{where}: environment variable {self.env} is not set")
            return SecretStr(value)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {self.file}: {exc.strerror}") from exc


class SecuritySettings(Strict):
    """TLS and SASL for every Kafka client of the bridge (librdkafka properties)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretRef | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretRef | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    @property
    def uses_ssl(self) -> bool:
        return self.protocol.endswith("SSL")

    @model_validator(mode="after")
    def _fields_match_the_protocol(self) -> SecuritySettings:
        """A SASL or SSL setting the protocol would not use is an error, not a silent
        plaintext connection; a SASL protocol needs all three SASL settings."""
        for name in SASL_FIELDS + SSL_FIELDS:
            needs = "SASL_PLAINTEXT or SASL_SSL" if name in SASL_FIELDS else "SSL or SASL_SSL"
            used = self.uses_sasl if name in SASL_FIELDS else self.uses_ssl
            if getattr(self, name) is not None and not used:
                raise ValueError(
                    f"{name}: protocol {self.protocol} does not use it (needs protocol {needs})"
                )
        if self.uses_sasl:
            missing = [n for n in SASL_FIELDS if getattr(self, n) is None]
            if missing:
                raise ValueError(f"{missing[0]}: required with protocol {self.protocol}")
        return self


SASL_FIELDS = ("sasl_mechanism", "sasl_username", "sasl_password")
SSL_FIELDS = (
    "ssl_ca_location",
    "ssl_certificate_location",
    "ssl_key_location",
    "ssl_key_password",
)
# librdkafka properties that kafka.security sets (not to be given again) -> its field
MANAGED = {
    "security.protocol": "protocol",
    "sasl.mechanisms": "sasl_mechanism",  # librdkafka's other name for sasl.mechanism
    **{name.replace("_", "."): name for name in SASL_FIELDS + SSL_FIELDS},
}
# settings that would let a client talk TLS to anyone (value as librdkafka reads it)
UNVERIFIED = {
    "enable.ssl.certificate.verification": ("false", "0"),
    "ssl.endpoint.identification.algorithm": ("none",),
}


SECRET_KEYS = ("password", "secret", "jaas", "key.pem", "private.key")


class ClusterClients(Strict):
    """What the settings of each cluster share: security, and librdkafka properties
    checked alike (no inline secrets, delivery reports that mean 'stored', nothing weaker
    than the protocol says)."""

    security: SecuritySettings = Field(default_factory=SecuritySettings)
    producer: dict[str, Scalar] = Field(default_factory=dict)

    def sections(self) -> dict[str, dict[str, Scalar]]:
        return {"producer": self.producer}

    @model_validator(mode="after")
    def _properties(self) -> Self:
        for section, props in self.sections().items():
            problem = inline_secret(section, props) or contradiction(section, props, self.security)
            if problem:
                raise ValueError(problem)
        problem = delivery_problem(self.producer)
        if problem:
            raise ValueError(problem)
        return self


class ShadowCluster(ClusterClients):
    """A second cluster for the shadow topics and the ledger topic (``kafka.shadow``): the
    source cluster is then only read (and the group's offsets committed there)."""

    bootstrap_servers: str


class KafkaSettings(ClusterClients):
    """Connection and client settings; extra librdkafka properties pass through as given."""

    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str | None = Field(default=None, description="default: streamchaos.<experiment>")
    transactional_id: str | None = Field(
        default=None,
        description="delivery: exactly-once: this member's id, stable across its restarts "
        "(default: streamchaos.<experiment>.<hostname>)",
    )
    consumer: dict[str, Scalar] = Field(default_factory=dict)
    shadow: ShadowCluster | None = Field(
        default=None, description="shadow and ledger topics on another cluster"
    )

    def sections(self) -> dict[str, dict[str, Scalar]]:
        return {"consumer": self.consumer, "producer": self.producer}

    @model_validator(mode="after")
    def _one_producer(self) -> KafkaSettings:
        if self.shadow is not None and self.producer:
            raise ValueError(
                "producer: with kafka.shadow the bridge produces only to the shadow "
                "cluster; give these properties as shadow.producer"
            )
        return self


def inline_secret(section: str, props: dict[str, Scalar]) -> str | None:
    for key in props:
        if any(word in key.lower() for word in SECRET_KEYS):
            return (
                f"{section}.{key}: secrets come from the environment or a file, not the "
                "YAML: use security (e.g. sasl_password: {env: NAME})"
            )
    return None


def contradiction(section: str, props: dict[str, Scalar], sec: SecuritySettings) -> str | None:
    """``sasl.*``/``ssl.*`` properties only with a protocol that uses them, none that
    ``security`` sets, and none that turns TLS's checks off: a client must never connect
    weaker than it says."""
    for key, value in props.items():
        where = f"{section}.{key}"
        if str(value).lower() in UNVERIFIED.get(key, ()):
            return (
                f"{where}: turns off the broker's certificate check; for a private CA give "
                "security.ssl_ca_location"
            )
        if key in MANAGED:
            return f"{where}: set it as security.{MANAGED[key]}"
        if key.startswith("sasl.") and not sec.uses_sasl:
            return (
                f"{where}: security.protocol {sec.protocol} does not use SASL "
                "(SASL_PLAINTEXT or SASL_SSL does)"
            )
        if key.startswith("ssl.") and not sec.uses_ssl:
            return (
                f"{where}: security.protocol {sec.protocol} does not use SSL (SSL or SASL_SSL does)"
            )
    return None


def delivery_problem(producer: dict[str, Scalar]) -> str | None:
    """Settings under which a delivery report would not mean 'the broker has it'."""
    acks = str(producer.get("acks", "all")).lower()
    if acks not in ("all", "-1"):
        return (
            f"producer.acks: {acks!r} would let offsets be committed for records the "
            "broker never stored; the bridge needs acks=all"
        )
    if "delivery.report.only.error" in producer:
        return (
            "producer.delivery.report.only.error: set by the bridge (off: a run of records "
            "is proven landed by the reports of its first and last record)"
        )
    if str(producer.get("enable.idempotence", True)).lower() in ("false", "0"):
        return (
            "producer.enable.idempotence: the bridge keeps it on (no duplicates or "
            "reordering from its own retries; commits rely on the order)"
        )
    return None


class SchemaRegistrySettings(Strict):
    url: str | None = None
    basic_auth: SecretRef | None = Field(default=None, description="'user:password' secret")
    timeout: Duration = Field(default=5.0, description="per request")
    retry_backoff: Duration = Field(
        default=5.0, description="after a failure, skip the registry this long (records pass)"
    )

    @model_validator(mode="after")
    def _no_credentials_in_the_url(self) -> SchemaRegistrySettings:
        if self.url is not None and urlsplit(self.url).password is not None:
            raise ValueError(
                "url: holds a password, which would be logged with the URL; give it as "
                "basic_auth: {env: NAME} ('user:password')"
            )
        return self
