"""Fields common to every fault's config; each type adds its own, flat, beside these."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from streamchaos.joins import JoinSpec
from streamchaos.predicates import Where, shown
from streamchaos.schedule import Schedule


class StopOn(BaseModel):
    """End the fault's episode when this alert fires during it (``alerts:`` says where
    the bridge reads alerts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    alert: str = Field(min_length=1, description="the alert's name (its alertname label)")
    labels: dict[str, str] = Field(default_factory=dict, description="labels it must carry")

    def matches(self, name: str, labels: dict[str, object]) -> bool:
        return name == self.alert and all(labels.get(k) == v for k, v in self.labels.items())


class FaultConfig(BaseModel):
    """The bridge decides which records (``fraction``, ``select``, ``schedule``, the
    budget); the fault decides what to do to them (its own fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    example: ClassVar[dict[str, Any] | None] = None
    """Settings (beside ``type``) the contract tests run on a record of four fields: user
    (string), amount (double), country (string), label (boolean). Every fault gives one."""

    type: str
    name: str | None = Field(default=None, description="unique per route; default: the type")
    fraction: float = Field(default=0.1, ge=0, le=1, description="share of records selected")
    select: Literal["record", "key"] = Field(
        default="record", description="record: each record drawn; key: a cohort of keys"
    )
    schedule: Schedule = Field(default_factory=Schedule)
    max_injections_per_second: float | None = Field(
        default=None, gt=0, description="blast-radius budget; selections beyond it pass"
    )
    where: Where | None = Field(
        default=None, description="only records matching: value fields, header.X, key, partition"
    )
    stop_on: StopOn | None = Field(
        default=None, description="end the episode when this alert fires (detected)"
    )

    @field_serializer("where", when_used="unless-none")
    def _where_as_given(self, where: Where | None) -> dict[str, Any] | None:
        """``where:`` as the file gave it (``in``, an explicit ``eq: null``), so a dumped
        config (ledger, plan file, API) loads back the same."""
        return shown(where) if where is not None else None

    @property
    def label(self) -> str:
        return self.name or self.type

    @property
    def joined(self) -> JoinSpec | None:
        """The other route whose records this fault joins by key (``feedback``, ``leak``'s
        ``label_from``), if any: the stage keeps a key table for it."""
        return None
