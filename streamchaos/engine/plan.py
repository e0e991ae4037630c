"""What a route's stages make of records: by batch index (``Plan``), or at a release
(``Released``); and items deferred to the bridge's long-hold store (``Deferred``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from streamchaos.record import Item

Cells = dict[int, list[Item]]  # batch index (or release order) -> what takes its place


class Deferred(NamedTuple):
    """An item for the long-hold store: due at ``until`` (the bridge's clock), held for
    ``seconds``, and resumed at the stages after stage ``after`` (its name)."""

    item: Item
    until: float
    seconds: float
    after: str


@dataclass(slots=True)
class Plan:
    """What the stages made of a run: ``outputs[i]`` replaces the record at batch index
    ``i`` (empty: held, deferred or dropped); ``dropped`` items are ledgered at once;
    ``passed``: records a stage picked that go on as they came (a spaced duplicate's
    original); ``deferred``: items for the long-hold store."""

    outputs: Cells
    dropped: list[Item]
    passed: list[int] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)


@dataclass(slots=True)
class Released:
    """What holding stages released at a time, per partition, after the stages that
    follow them; the items those stages dropped, and those they deferred."""

    items: dict[int, list[Item]] = field(default_factory=dict)
    dropped: list[Item] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
