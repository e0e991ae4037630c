"""The experiment file: pydantic models, safety rules and ``load_config``.

Every model forbids unknown keys, so a typo fails at load time instead of silently
turning a fault or a setting off. Errors carry the field path, e.g. ``routes[1].shadow``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from streamchaos.errors import ConfigError
from streamchaos.faults import FAULTS, VALUE_FAULTS, FaultSpec
from streamchaos.lineage import LINEAGE_HEADER
from streamchaos.units import Duration

Scalar = str | int | float | bool
TOPIC_NAME = r"^[A-Za-z0-9._-]{1,249}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
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


class SecuritySettings(_Model):
    """TLS and SASL for every Kafka client of the bridge (librdkafka properties)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretRef | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretRef | None = None

    @model_validator(mode="after")
    def _sasl(self) -> SecuritySettings:
        if self.protocol.startswith("SASL"):
            missing = [
                n
                for n in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, n) is None
            ]
            if missing:
                raise ValueError(f"{missing[0]}: required with protocol {self.protocol}")
        return self


SECRET_KEYS = ("password", "secret", "jaas", "key.pem", "private.key")


class KafkaSettings(_Model):
    """Connection and client settings; extra librdkafka properties pass through as given."""

    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str | None = Field(default=None, description="default: streamchaos.<experiment>")
    consumer: dict[str, Scalar] = Field(default_factory=dict)
    producer: dict[str, Scalar] = Field(default_factory=dict)
    security: SecuritySettings = Field(default_factory=SecuritySettings)

    @model_validator(mode="after")
    def _delivery_safety(self) -> KafkaSettings:
        """Settings under which a delivery report would not mean 'the broker has it'."""
        acks = str(self.producer.get("acks", "all")).lower()
        if acks not in ("all", "-1"):
            raise ValueError(
                f"producer.acks: {acks!r} would let offsets be committed for records the "
                "broker never stored; the bridge needs acks=all"
            )
        if "delivery.report.only.error" in self.producer:
            raise ValueError(
                "producer.delivery.report.only.error: set by the bridge (off: a run of records "
                "is proven landed by the reports of its first and last record)"
            )
        if str(self.producer.get("enable.idempotence", True)).lower() in ("false", "0"):
            raise ValueError(
                "producer.enable.idempotence: the bridge keeps it on (no duplicates or "
                "reordering from its own retries; commits rely on the order)"
            )
        return self

    @model_validator(mode="after")
    def _no_inline_secrets(self) -> KafkaSettings:
        for section in ("consumer", "producer"):
            for key in getattr(self, section):
                if any(word in key.lower() for word in SECRET_KEYS):
                    raise ValueError(
                        f"{section}.{key}: secrets come from the environment or a file, "
                        "not the YAML: use kafka.security (e.g. sasl_password: {env: NAME})"
                    )
        return self


class SchemaRegistrySettings(_Model):
    url: str | None = None
    basic_auth: SecretRef | None = Field(default=None, description="'user:password' secret")
    timeout: Duration = Field(default=5.0, description="per request")
    retry_backoff: Duration = Field(
        default=5.0, description="after a failure, skip the registry this long (records pass)"
    )


class Route(_Model):
    """One source topic bridged to one shadow topic."""

    source: str = Field(pattern=TOPIC_NAME, description="a topic name, not a pattern")
    shadow: str = Field(pattern=TOPIC_NAME)
    format: Literal["avro", "json", "bytes"] = "bytes"
    create_shadow: bool = False
    schema_file: Path | None = Field(
        default=None, description="avro: schemaless Avro written with this local schema"
    )
    faults: list[FaultSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_fault_names(self) -> Route:
        seen: dict[str, int] = {}
        for i, fault in enumerate(self.faults):
            if fault.label in seen:
                raise ValueError(
                    f"faults[{i}].name: {fault.label!r} is already the name of "
                    f"faults[{seen[fault.label]}] (names are unique per route)"
                )
            seen[fault.label] = i
            if fault.type in VALUE_FAULTS and self.format == "bytes":
                raise ValueError(
                    f"faults[{i}].type: {fault.type} changes record contents, so the route "
                    "needs format avro or json"
                )
        if self.schema_file is not None and not self.schema_file.is_file():
            raise ValueError(f"schema_file: {str(self.schema_file)!r} is not a readable file")
        return self

    @property
    def needs_registry(self) -> bool:
        """Its faults decode framed Avro records, whose schemas come from the registry."""
        return (
            self.format == "avro"
            and self.schema_file is None
            and any(f.type in VALUE_FAULTS for f in self.faults)
        )


class LedgerSettings(_Model):
    path: Path | None = None
    topic: str | None = Field(default=None, pattern=TOPIC_NAME)


class MetricsSettings(_Model):
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class SafetySettings(_Model):
    shadow_suffix: str = Field(default=".shadow", min_length=1)


class BridgeSettings(_Model):
    """Hot-loop tuning. Defaults come from measurements (docs/benchmarks.md)."""

    lineage_header: str | None = Field(
        default=None,
        description="a header with topic/partition/offset on every shadow record (e.g. "
        f"{LINEAGE_HEADER}); None: the ledger's lineage lines say where each record went",
    )
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    poll_timeout: Duration = 0.005
    commit_interval: Duration = 1.0
    shutdown_timeout: Duration = 30.0


class Config(_Model):
    """A whole experiment: what to read, where to write, what to break."""

    experiment: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    seed: int = 0
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    schema_registry: SchemaRegistrySettings = Field(default_factory=SchemaRegistrySettings)
    routes: list[Route] = Field(min_length=1)
    delivery: Literal["at-least-once"] = "at-least-once"
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    bridge: BridgeSettings = Field(default_factory=BridgeSettings)

    @model_validator(mode="after")
    def _shadow_only(self) -> Config:
        problems = shadow_only_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def group_id(self) -> str:
        return self.kafka.group_id or f"streamchaos.{self.experiment}"


def shadow_only_problems(cfg: Config) -> list[str]:
    """Each way the config could make the bridge write to a source topic (invariant 2)."""
    problems = []
    sources: dict[str, int] = {}
    for i, route in enumerate(cfg.routes):
        sources.setdefault(route.source, i)
    shadows: dict[str, int] = {}
    suffix = cfg.safety.shadow_suffix
    for i, route in enumerate(cfg.routes):
        where = f"routes[{i}]"
        if sources[route.source] != i:
            problems.append(
                f"{where}.source: {route.source!r} is already the source of "
                f"routes[{sources[route.source]}]"
            )
        if route.shadow in sources:
            problems.append(
                f"{where}.shadow: {route.shadow!r} is the source of "
                f"routes[{sources[route.shadow]}]; the bridge never writes to a source topic"
            )
        if not route.shadow.endswith(suffix) or route.shadow == suffix:
            problems.append(
                f"{where}.shadow: {route.shadow!r} does not end with safety.shadow_suffix "
                f"{suffix!r}"
            )
        if route.shadow in shadows:
            problems.append(
                f"{where}.shadow: {route.shadow!r} is already the shadow of "
                f"routes[{shadows[route.shadow]}]"
            )
        shadows.setdefault(route.shadow, i)
    if cfg.ledger.topic is not None and cfg.ledger.topic in sources:
        problems.append(f"ledger.topic: {cfg.ledger.topic!r} is a source topic")
    for i, route in enumerate(cfg.routes):
        for j, fault in enumerate(route.faults):
            subject = getattr(fault, "subject", None)
            if subject and any(subject.startswith(f"{src}-") for src in sources):
                problems.append(
                    f"routes[{i}].faults[{j}].subject: {subject!r} is a source topic's "
                    "subject; new schemas go to the shadow's subject or a dedicated one"
                )
            if fault.type == "schema_break" and route.format != "avro":
                problems.append(
                    f"routes[{i}].faults[{j}].type: schema_break needs format avro "
                    f"(routes[{i}].format is {route.format})"
                )
        if route.needs_registry and not cfg.schema_registry.url:
            problems.append(
                f"routes[{i}].format: avro faults need schema_registry.url (or "
                f"SCHEMA_REGISTRY_URL), or routes[{i}].schema_file for schemaless Avro"
            )
    return problems


ENV_OVERRIDES = {
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
    "SCHEMA_REGISTRY_URL": ("schema_registry", "url"),
}


def apply_env(data: dict[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Connection settings from the environment win over the file (12-factor style)."""
    source: Mapping[str, str] = os.environ if env is None else env
    out = dict(data)
    for var, (section, key) in ENV_OVERRIDES.items():
        if source.get(var):
            block = out.get(section)
            merged = dict(block) if isinstance(block, dict) else {}
            merged[key] = source[var]
            out[section] = merged
    return out


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem, each starting with the field path."""
    lines = []
    for err in exc.errors(include_url=False):
        path = _path(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if path and _RELATIVE.match(msg):  # a model validator naming a field below it
            lines.append(f"{path}.{msg}")
        elif not path:
            lines.append(msg)
        else:
            lines.append(f"{path}: {msg}")
    return "\n".join(lines)


_RELATIVE = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    prev: Any = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            isinstance(part, str)
            and not part.startswith("function-")
            and not (part in FAULTS and isinstance(prev, int))  # the union's tag, not a field
        ):
            out += f".{part}" if out else part
        prev = part
    return out


def config_from_dict(data: Any, *, env: Mapping[str, str] | None = None) -> Config:
    """Validate a plain mapping (what ``yaml.safe_load`` gives) into a ``Config``."""
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping at the top level")
    try:
        return Config.model_validate(apply_env(data, env))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return an experiment file; raise ConfigError naming the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML: {exc}") from exc
    return config_from_dict(data, env=env)
