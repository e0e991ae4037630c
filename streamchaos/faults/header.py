"""``header``: model tags and versions that change on the wire — a header set, removed,
renamed or corrupted (``model-version`` flipped from v7 to v6, ``content-type`` dropped).

Every header of that name is changed; a record without one, or one the change would
leave as it is, is passed on unchanged (``set`` adds a missing one). ``corrupt`` replaces
the value: ``garbage`` (random bytes as many as it had, at least one, seeded per
record), ``empty`` or ``truncate`` (its first half); the ledger shows the new bytes in
hex. The ledger's ``old`` is the first such header's value. Target records
by header, key or value with ``where:`` (e.g. ``where: {header.model-version: v7}``).

>>> import random
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = Header(HeaderConfig(header="model-version", value="v6"), random.Random(1))
>>> [change] = fault.act(picks_of([Record("t", 0, 7, None, b"v", (("model-version", b"v7"),))]), 0)
>>> change.record.headers, change.injection.detail
((('model-version', b'v6'),), {'mode': 'set', 'header': 'model-version', 'old': 'v7', 'new': 'v6'})
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from streamchaos.faults.actions import KEEP, Action
from streamchaos.faults.base import Fault, FaultConfig
from streamchaos.faults.picks import Picks
from streamchaos.predicates import text
from streamchaos.record import Headers


class HeaderConfig(FaultConfig):
    type: Literal["header"] = "header"
    example: ClassVar[dict[str, Any]] = {"mode": "set", "header": "model-version", "value": "v6"}
    mode: Literal["set", "remove", "rename", "corrupt"] = "set"
    header: str = Field(min_length=1, description="the header's name")
    value: str | None = Field(default=None, description="set: the new value (UTF-8)")
    to: str | None = Field(default=None, min_length=1, description="rename: the new name")
    corruption: Literal["garbage", "empty", "truncate"] = Field(
        default="garbage", description="corrupt: what the value becomes"
    )

    @model_validator(mode="after")
    def _needs(self) -> HeaderConfig:
        if self.mode == "set" and self.value is None:
            raise ValueError("value: set needs the new value")
        if self.mode == "rename" and self.to in (None, self.header):
            raise ValueError("to: rename needs a new name, not the header's own")
        if self.value is not None:
            try:
                self.value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"value: not encodable as UTF-8 ({exc.reason})") from exc
        return self


class Header(Fault):
    Config = HeaderConfig
    purpose = (
        "model tags and versions changed: a header set, removed, renamed or corrupted "
        "(`model-version` v7→v6, `content-type` dropped)"
    )
    config: HeaderConfig

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        out: list[Action] = []
        for i, item in enumerate(picks.items):
            record = item.record
            old = [v for n, v in record.headers if n == self.config.header]
            if not old and self.config.mode != "set":
                out.append(KEEP)  # nothing to remove, rename or corrupt
                continue
            headers, new = self._changed(record.headers, picks.seeds[i] if old else 0)
            if headers == record.headers:
                out.append(KEEP)  # set to what it was, an empty value emptied: no change
                continue
            detail = {
                "mode": self.config.mode,
                "header": self.config.header,
                "old": text(old[0]) if old else None,
                "new": new,
            }
            out.append(self.modify(record.evolve(headers=headers), detail))
        return out

    def _changed(self, headers: Headers, seed: int) -> tuple[Headers, str | None]:
        """The new headers, and the first changed header's new value (or name) as text."""
        cfg = self.config
        if cfg.mode == "set":  # in place, or added last
            value = (cfg.value or "").encode()
            if any(n == cfg.header for n, _ in headers):
                return tuple((n, value if n == cfg.header else v) for n, v in headers), cfg.value
            return (*headers, (cfg.header, value)), cfg.value
        if cfg.mode == "remove":
            return tuple((n, v) for n, v in headers if n != cfg.header), None
        if cfg.mode == "rename":
            to = cfg.to or cfg.header  # the model requires ``to`` for a rename
            return tuple((to if n == cfg.header else n, v) for n, v in headers), to
        rng = random.Random(seed)
        changed = tuple((n, self._corrupt(v, rng) if n == cfg.header else v) for n, v in headers)
        first = next(v for n, v in changed if n == cfg.header)
        return changed, None if first is None else "0x" + first.hex()

    def _corrupt(self, value: bytes | None, rng: random.Random) -> bytes:
        data = value or b""
        if self.config.corruption == "empty":
            return b""
        if self.config.corruption == "truncate":
            return data[: len(data) // 2]
        return bytes(rng.getrandbits(8) for _ in range(max(1, len(data))))
