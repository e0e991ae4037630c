"""``drift``: gradual distribution drift per feature — what ML monitoring exists to catch.

Numeric: ``shift`` (absolute, or in σ units with ``unit: sigma``, σ from a warm-up of the
live feature), ``scale`` (variance change about the mean), ``noise`` (added Gaussian).
Categorical: ``remap`` (a → b with probability ``p``), ``new_category`` (an unseen value at
``rate``), ``mix`` (target frequencies). Any field: ``null_rate``.
Intensity follows the schedule; ``ramp_by: magnitude`` (default) scales every selected
record's change by it, ``ramp_by: fraction`` gives more records the full change.
``where: {field: value}`` limits the drift to a segment.

The selected records of a consumed batch are drifted together: their feature values
become numpy columns, every draw is a pure function of (record seed, feature, purpose),
so a record drifts the same way alone or in any batch. Numeric-only drift on flat Avro
records rewrites the fields in the Avro bytes (``codec.patch.Spans``) instead of a full
decode and encode; once the warm-up is over, such a batch is one (records × features)
array with the same operations per value (``_drift_patched``). A feature's settings are
``faults.drift_features``, the rows and their checks ``faults.drift_rows``, the column
math ``faults.drift_columns``.

>>> cfg = DriftConfig(features={"amount": {"shift": 5}})
>>> cfg.features["amount"].shift
5.0
"""

from __future__ import annotations

from collections.abc import Callable
from operator import ne
from typing import Any, ClassVar, Literal, cast

import numpy as np
from pydantic import Field

from streamchaos.codec.avro import AvroCodec
from streamchaos.codec.patch import Layouts
from streamchaos.faults.actions import Action
from streamchaos.faults.base import FaultConfig, InPlaceFault, Revalued, RunningStats
from streamchaos.faults.drift_columns import compute, moved_rows
from streamchaos.faults.drift_features import FeatureDrift
from streamchaos.faults.drift_rows import (
    KEEP,
    Patched,
    Row,
    as_float32,
    checked_floats,
    decoded,
    narrowed,
    written,
)
from streamchaos.faults.picks import Picks
from streamchaos.selection import first_bits_array


class DriftConfig(FaultConfig):
    type: Literal["drift"] = "drift"
    example: ClassVar[dict[str, Any]] = {
        "features": {"amount": {"shift": 3}, "country": {"new_category": "XX"}}
    }
    fraction: float = Field(default=1.0, ge=0, le=1, description="share of records selected")
    features: dict[str, FeatureDrift] = Field(min_length=1)
    ramp_by: Literal["magnitude", "fraction"] = "magnitude"
    warmup: int = Field(default=200, ge=2, description="records that estimate mean and σ")


class Drift(InPlaceFault):
    Config = DriftConfig
    purpose = (
        "gradual distribution drift per feature: `shift` (absolute or σ), `scale`, `noise`, "
        "`remap`, `new_category`, `mix`, `null_rate`; a fraction, a key cohort or a "
        "segment (`where:`)"
    )
    config: DriftConfig

    def reset(self) -> None:
        self._stats: dict[str, RunningStats] = {}
        self._floats: dict[int, list[int]] = {}  # per checked schema: its float features
        cfg = self.config
        self._names = list(cfg.features)
        self._layouts = Layouts(self._names, self._check)
        self._patchable = all(
            spec.numeric and spec.null_rate is None for spec in cfg.features.values()
        )
        # draws are needed (a key per record) only for noise, categories and nulls
        self._keyed = any(
            spec.noise is not None or spec.null_rate is not None or not spec.numeric
            for spec in cfg.features.values()
        )

    # -- the fault protocol: one record, or a batch, the same way --------------------

    def revalue(self, picks: Picks, now: float) -> list[Revalued]:
        # each record's draw key: the first 64 bits its seeded generator would draw
        keys = first_bits_array(picks.seeds) if self._keyed else None
        return self._drift_values(picks.values, keys, now, picks.where)

    def change(self, picks: Picks, i: int, now: float) -> Action | None:
        [result] = self.revalue(picks.only(i), now)
        return None if result is None else self.new_value(result[0], result[1], self.describe)

    def _drift_values(
        self,
        values: list[bytes | None],
        keys: Any,
        now: float,
        where: Callable[[int], str],
    ) -> list[Revalued]:
        """``keys``: each record's draw key (a list or uint64 array; None when nothing
        draws)."""
        out: list[Revalued] = [None] * len(values)
        rows = self._rows(values, where)
        if not rows:
            return out
        intensity = self.timeline(now)
        if self.config.ramp_by == "fraction":
            intensity = 1.0 if intensity > 0 else 0.0
        row_keys = None
        if keys is not None:
            row_keys = np.asarray(keys, dtype=np.uint64)
            if len(rows) != len(values):
                row_keys = row_keys[[i for i, _ in rows]]
        if self._warmed(rows):
            return self._drift_patched(rows, row_keys, intensity, out, where)
        columns = [list(column) for column in zip(*(row.values for _, row in rows), strict=True)]
        try:
            news = compute(
                self.config.features, self._stats, self.config.warmup, columns, row_keys, intensity
            )
        except Exception as exc:  # a bug must not stop the bridge: the batch passes unchanged
            for i, _ in rows:
                self.report(where(i), exc)
            return out
        rounded = round(intensity, 6)
        olds_by_row = zip(*columns, strict=True)
        for (i, row), olds, new in zip(rows, olds_by_row, zip(*news, strict=True), strict=True):
            try:
                held = narrowed(new, row.floats)
                # a feature whose value stays what it was (equal, same type) is not written
                kept = [
                    KEEP if n is KEEP or (n == o and type(n) is type(o)) else n
                    for o, n in zip(olds, held, strict=True)
                ]
                out[i] = written(row, olds, kept, rounded)
            except Exception as exc:
                self.report(where(i), exc)
        return out

    def _warmed(self, rows: list[tuple[int, Row]]) -> bool:
        """Whether ``_drift_patched`` may do the batch: every record patched in place with
        one layout, and every feature past its warm-up (as ``compute`` would find it)."""
        first = rows[0][1]
        if not isinstance(first, Patched):
            return False
        layout = first.located
        if any(not isinstance(row, Patched) or row.located is not layout for _, row in rows):
            return False
        warmup = self.config.warmup
        return all(name in self._stats and self._stats[name].n >= warmup for name in self._names)

    def _drift_patched(
        self,
        rows: list[tuple[int, Row]],
        keys: np.ndarray | None,
        i: float,
        out: list[Revalued],
        where: Callable[[int], str],
    ) -> list[Revalued]:
        """``compute`` and the writing for flat Avro records of one layout once the
        warm-up is over: one (records × features) array instead of a column per feature
        (``moved_rows``), with the same operations per value as ``compute`` (``moved``),
        so the results are the same."""
        patched = cast(list[tuple[int, Patched]], rows)
        olds = [row.values for _, row in patched]
        try:
            news = moved_rows(self.config.features, self._stats, olds, keys, i)
        except Exception as exc:  # a bug must not stop the bridge: the batch passes unchanged
            for index, _ in patched:
                self.report(where(index), exc)
            return out
        ints, floats = patched[0][1].located.ints, patched[0][1].located.floats
        rounded = round(i, 6)
        for (index, row), old, new in zip(patched, olds, news, strict=True):
            try:
                for f in ints:
                    new[f] = round(new[f])  # an integer feature stays an integer
                for f in floats:
                    new[f] = as_float32(new[f])  # what the field will hold
                if all(map(ne, new, old)):  # every feature changed (the common case)
                    located = row.located
                    out[index] = located.rewrite(row.data, row.found, new), (rounded, old, new)
                    continue
                # one type per column here: equal values are unchanged ones
                kept = [KEEP if n == o else n for o, n in zip(old, new, strict=True)]
                out[index] = written(row, old, kept, rounded)
            except Exception as exc:
                self.report(where(index), exc)
        return out

    def describe(self, note: Any) -> dict[str, Any]:
        """(intensity, old values, new values or ``KEEP``) as the ledger's detail."""
        intensity, olds, news = note
        features = {
            name: {"old": old, "new": new}
            for name, old, new in zip(self._names, olds, news, strict=True)
            if new is not KEEP
        }
        return {"intensity": intensity, "features": features}

    # -- reading and writing one record --------------------------------------------

    def _rows(
        self, values: list[bytes | None], where: Callable[[int], str]
    ) -> list[tuple[int, Row]]:
        """(index, row) of each value that has the features (the others: bad input,
        reported, which passes unchanged). Flat Avro records are read from their bytes
        (``Patched``), the rest decoded."""
        rows: list[tuple[int, Row]] = []
        codec = self.ctx.codec
        find = self._layouts.find if self._patchable and isinstance(codec, AvroCodec) else None
        for i, data in enumerate(values):
            try:
                if find is not None:
                    located, start = find(codec, data)
                    if located is not None:
                        assert data is not None  # locate refuses tombstones
                        rows.append((i, Patched(data, located, located.read_record(data, start))))
                        continue
                rows.append((i, decoded(codec, data, self.config.features, self._check)))
            except Exception as exc:  # bad input passes unchanged, reported
                self.report(where(i), exc)
        return rows

    def _check(self, schema: Any) -> list[int]:
        """The features ``schema`` holds as Avro ``float``s, once it is found to suit the
        drift (``checked_floats``, once per writer schema)."""
        if schema is None:
            return []
        floats = self._floats.get(id(schema))
        if floats is None:
            floats = self._floats[id(schema)] = checked_floats(self.config.features, schema)
        return floats
