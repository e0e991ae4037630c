"""A route: one source topic (or a pattern of them) bridged to its shadow, with its
faults; checked on its own here, against the other routes in ``experiment``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from streamchaos.config.clients import Strict
from streamchaos.faults.registry import DECODING_FAULTS, FaultSpec

TOPIC_NAME = r"^[A-Za-z0-9._-]{1,249}$"


class Route(Strict):
    """One source topic bridged to one shadow topic; or, with a ``source`` pattern
    (``^features\\..*``), every topic it matches, each to its own shadow (``shadow``:
    a template such as ``{topic}.shadow``), topics created later included."""

    source: str = Field(description="a topic name, or a regex starting with ^")
    shadow: str = Field(description="a topic name; with a source pattern, e.g. {topic}.shadow")
    format: Literal["avro", "json", "bytes"] = "bytes"
    create_shadow: bool = False
    schema_file: Path | None = Field(
        default=None, description="avro: schemaless Avro written with this local schema"
    )
    faults: list[FaultSpec] = Field(default_factory=list)

    @property
    def is_pattern(self) -> bool:
        return self.source.startswith("^")

    @model_validator(mode="after")
    def _names(self) -> Route:
        """A topic name, or a pattern whose shadow is a template of one."""
        if not self.is_pattern:
            if not re.match(TOPIC_NAME, self.source):
                raise ValueError(
                    f"source: {self.source!r} is not a topic name (a pattern starts with ^)"
                )
            if not re.match(TOPIC_NAME, self.shadow):
                raise ValueError(f"shadow: {self.shadow!r} is not a topic name")
            return self
        try:
            re.compile(self.source)
        except re.error as exc:
            raise ValueError(
                f"source: the pattern {self.source!r} does not compile: {exc}"
            ) from exc
        example = self.shadow.replace("{topic}", "t")
        if self.shadow.count("{topic}") != 1 or not re.match(TOPIC_NAME, example):
            raise ValueError(
                f"shadow: with a source pattern, a template with {{topic}} once, e.g. "
                f"'{{topic}}.shadow' (got {self.shadow!r})"
            )
        return self

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
            fields = [
                name
                for name in fault.where or {}
                if name not in ("key", "partition") and not name.startswith("header.")
            ]
            if fields and self.format == "bytes":
                raise ValueError(
                    f"faults[{i}].where.{fields[0]}: a value field needs format avro or json "
                    "(on a bytes route: key, partition or header.NAME)"
                )
            if fault.type in DECODING_FAULTS and self.format == "bytes":
                raise ValueError(
                    f"faults[{i}].type: {fault.type} reads record values, so the route "
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
            and any(f.type in DECODING_FAULTS for f in self.faults)
        )
