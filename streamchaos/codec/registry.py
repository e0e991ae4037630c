"""Schema Registry access through confluent-kafka's ``SchemaRegistryClient``.

Works with any registry speaking the Confluent REST API (Confluent, Apicurio's ccompat,
Redpanda, Karapace). Parsed schemas are cached by id, so each id is fetched and parsed
once. When the registry cannot be reached, calls fail fast with ``RegistryUnavailable``
for ``backoff`` seconds instead of blocking the bridge's hot loop on every record.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streamchaos.codec.mutate import int_fields
from streamchaos.codec.wire import Undecodable
from streamchaos.errors import FieldError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedSchema:
    """A schema as JSON (to mutate) and as fastavro's parsed form (to read and write)."""

    raw: Any
    parsed: Any
    ints: dict[str, str]  # top-level int/long fields: writes are range-checked against them

    @classmethod
    def of(cls, raw: Any) -> ParsedSchema:
        if isinstance(raw, str):
            raw = json.loads(raw)
        return cls(raw, fastavro.parse_schema(raw), int_fields(raw))


class RegistryUnavailable(Undecodable):
    def __init__(self, message: str) -> None:
        super().__init__("registry_unavailable", message)


class Registry:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        client: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        conf = {"url": url, "timeout": timeout, "max.retries": 0, **(extra or {})}
        self.client = client if client is not None else SchemaRegistryClient(conf)
        # what ``preload`` makes a client of its own from (None: it uses the given one)
        self._own_conf = conf if client is None else None
        self.backoff = backoff
        self.clock = clock
        self._down_until = 0.0
        self._by_id: dict[int, ParsedSchema] = {}
        self._registered: dict[tuple[str, str], int] = {}
        self._compat_none: set[str] = set()
        self._refused: dict[tuple[str, str], str] = {}

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        if self.clock() < self._down_until:
            raise RegistryUnavailable(f"schema registry {self.url} unreachable (backing off)")
        try:
            return fn()
        except SchemaRegistryError:
            raise
        except Exception as exc:  # connection refused, timeouts, DNS: all "unreachable"
            self._down_until = self.clock() + self.backoff
            log.warning("schema registry %s unreachable during %s: %s", self.url, what, exc)
            raise RegistryUnavailable(f"schema registry unreachable: {exc}") from exc

    def schema(self, schema_id: int) -> ParsedSchema:
        cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        try:
            found = self._call("get_schema", lambda: self.client.get_schema(schema_id))
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise Undecodable("unknown_schema_id", f"schema id {schema_id} unknown") from exc
            raise RegistryUnavailable(f"registry error: {exc}") from exc
        return self._keep(schema_id, found)

    def _keep(self, schema_id: int, found: Any) -> ParsedSchema:
        """The registry's answer for ``schema_id``, parsed and cached, if records can use it."""
        if getattr(found, "schema_type", "AVRO") not in (None, "AVRO"):
            raise Undecodable("unsupported_schema", f"schema id {schema_id} is not Avro")
        try:
            parsed = ParsedSchema.of(found.schema_str)
        except Exception as exc:  # references, Protobuf/JSON Schema, invalid JSON
            raise Undecodable("unsupported_schema", f"schema id {schema_id}: {exc}") from exc
        self._by_id[schema_id] = parsed
        return parsed

    def preload(self, subject: str) -> int | None:
        """Look up and cache ``subject``'s latest schema now, ahead of the records, so the
        first of them written with it do not wait for the registry; returns its id, or None
        when the registry has no such subject or records could not use the schema (they
        then look theirs up as before). Raises ``RegistryUnavailable`` when the registry
        cannot be reached or refuses (authentication, server errors), without starting the
        back-off a record's lookup would.

        What is cached is what ``schema`` would cache: the schema the registry gives for
        the latest version's id. The lookups use connections of their own: after a 404 (no
        such subject), Apicurio has left the next request on the same connection
        unanswered until the timeout."""
        own = self._own_conf
        client = SchemaRegistryClient(own) if own is not None else self.client
        try:
            try:
                schema_id = client.get_latest_version(subject).schema_id
                if schema_id is None:
                    return None
                found = client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:  # no such subject (or id): nothing to load
                    log.info("schema registry: no schema of %s to load ahead (%s)", subject, exc)
                    return None
                raise RegistryUnavailable(f"registry error: {exc}") from exc
            except Exception as exc:  # connection refused, timeouts, DNS
                raise RegistryUnavailable(f"schema registry unreachable: {exc}") from exc
        finally:
            if own is not None:
                client.close()
        try:
            self._keep(schema_id, found)
        except Undecodable as exc:  # not Avro, references: the records will say so
            log.info("schema registry: no schema of %s loaded ahead (%s)", subject, exc)
            return None
        return int(schema_id)

    def register(self, subject: str, raw: Any) -> int:
        """Register ``raw`` under ``subject`` (compatibility NONE) and return its id."""
        text = json.dumps(raw, sort_keys=True, separators=(",", ":"))
        key = (subject, text)
        if key in self._registered:
            return self._registered[key]
        if key in self._refused:  # asked once; the answer will not change by asking again
            raise FieldError("registration_refused", self._refused[key])
        if subject not in self._compat_none and self.clock() >= self._down_until:
            _set_none(self.client, subject)
            self._compat_none.add(subject)
        try:
            schema_id = self._call(
                "register_schema",
                lambda: self.client.register_schema(subject, Schema(text, "AVRO")),
            )
        except SchemaRegistryError as exc:  # refused (409, 422, 403): a fault cannot apply
            self._refused[key] = f"{subject}: {exc}"
            raise FieldError("registration_refused", self._refused[key]) from exc
        self._registered[key] = schema_id
        self._by_id.setdefault(schema_id, ParsedSchema.of(raw))
        return int(schema_id)

    def versions(self, subject: str) -> list[tuple[int, int]]:
        """(version, schema id) of every version of ``subject``, oldest first."""
        try:
            numbers = self._call("get_versions", lambda: self.client.get_versions(subject))
        except SchemaRegistryError as exc:
            raise FieldError("no_subject", f"{subject}: {exc}") from exc
        out = []
        for number in sorted(numbers):
            reg = self._call("get_version", partial(self.client.get_version, subject, number))
            out.append((number, reg.schema_id))
        return out


def _set_none(client: Any, subject: str) -> None:
    """Best effort: some registries refuse per-subject settings; registration then decides."""
    try:
        client.set_compatibility(subject_name=subject, level="NONE")
    except Exception as exc:
        log.warning("could not set compatibility NONE on %s: %s", subject, exc)
