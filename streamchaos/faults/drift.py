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
array with the same operations per value, or one addition per value when every feature
only shifts by an absolute amount (``_drift_patched``).

>>> cfg = DriftConfig(features={"amount": {"shift": 5}})
>>> cfg.features["amount"].shift
5.0
"""

from __future__ import annotations

import bisect
import math
import struct
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from itertools import accumulate
from operator import ne
from typing import Any, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamchaos.codec import mutate
from streamchaos.codec.avro import AvroCodec
from streamchaos.codec.patch import Layouts, Spans
from streamchaos.errors import FieldError
from streamchaos.faults.actions import Action
from streamchaos.faults.base import FaultConfig, InPlaceFault, Revalued, RunningStats
from streamchaos.faults.picks import Picks
from streamchaos.selection import first_bits_array, keyed_uniforms, splitmix


class FeatureDrift(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shift: float | None = Field(default=None, description="mean shift (absolute or in σ)")
    unit: Literal["absolute", "sigma"] = "absolute"
    scale: float | None = Field(default=None, gt=0, description="spread × this about the mean")
    noise: float | None = Field(default=None, ge=0, description="σ of added Gaussian noise")
    remap: dict[str, str] | None = Field(default=None, description="category a → b")
    p: float = Field(default=1.0, ge=0, le=1, description="remap probability")
    new_category: str | None = Field(default=None, description="an unseen category")
    rate: float = Field(default=0.1, ge=0, le=1, description="new_category rate")
    mix: dict[str, float] | None = Field(default=None, description="target frequencies")
    null_rate: float | None = Field(default=None, ge=0, le=1, description="share set to null")

    @model_validator(mode="after")
    def _one_op(self) -> FeatureDrift:
        ops = (
            self.shift,
            self.scale,
            self.noise,
            self.remap,
            self.new_category,
            self.mix,
            self.null_rate,
        )
        if all(op is None for op in ops):
            raise ValueError(
                "give at least one of shift, scale, noise, remap, new_category, mix, null_rate"
            )
        if self.mix is not None and not math.isclose(sum(self.mix.values()), 1.0, abs_tol=1e-6):
            raise ValueError("mix frequencies must sum to 1")
        return self

    @property
    def numeric(self) -> bool:
        return any(op is not None for op in (self.shift, self.scale, self.noise))


class DriftConfig(FaultConfig):
    type: Literal["drift"] = "drift"
    fraction: float = Field(default=1.0, ge=0, le=1, description="share of records selected")
    features: dict[str, FeatureDrift] = Field(min_length=1)
    ramp_by: Literal["magnitude", "fraction"] = "magnitude"
    where: dict[str, Any] | None = Field(default=None, description="only this segment")
    warmup: int = Field(default=200, ge=2, description="records that estimate mean and σ")


class Drift(InPlaceFault):
    Config = DriftConfig
    purpose = (
        "gradual distribution drift per feature: shift, scale, noise, category mix, "
        "new category, null-rate creep"
    )
    config: DriftConfig

    def reset(self) -> None:
        self._stats: dict[str, RunningStats] = {}
        self._checked: set[int] = set()
        self._floats: dict[int, list[int]] = {}  # per checked schema: its float features
        cfg = self.config
        self._names = list(cfg.features)
        self._layouts = Layouts(self._names, self._check)
        self._patchable = cfg.where is None and all(
            spec.numeric and spec.null_rate is None for spec in cfg.features.values()
        )
        # draws are needed (a key per record) only for noise, categories and nulls
        self._keyed = any(
            spec.noise is not None or spec.null_rate is not None or not spec.numeric
            for spec in cfg.features.values()
        )
        # every feature shifts by an absolute amount and does nothing else: one addition
        # per value, in plain Python (numpy's per-call cost is most of it, for a batch's
        # few selected records)
        self._shifts = [0.0 if spec.shift is None else spec.shift for spec in cfg.features.values()]
        self._shifts_only = all(
            spec.shift is not None
            and spec.unit == "absolute"
            and spec.scale is None
            and spec.noise is None
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
        intensity = self.config.schedule.intensity(now)
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
            news = self._compute(columns, row_keys, intensity)
        except Exception as exc:  # a bug must not stop the bridge: the batch passes unchanged
            for i, _ in rows:
                self.report(where(i), exc)
            return out
        rounded = round(intensity, 6)
        olds_by_row = zip(*columns, strict=True)
        for (i, row), olds, new in zip(rows, olds_by_row, zip(*news, strict=True), strict=True):
            try:
                held = _narrowed(new, self._floats_of(row))
                # a feature whose value stays what it was (equal, same type) is not written
                kept = [
                    _KEEP if n is _KEEP or (n == o and type(n) is type(o)) else n
                    for o, n in zip(olds, held, strict=True)
                ]
                out[i] = _written(row, olds, kept, rounded)
            except Exception as exc:
                self.report(where(i), exc)
        return out

    def _floats_of(self, row: _Row) -> list[int]:
        """The features ``row``'s writer schema holds as Avro ``float``s."""
        if isinstance(row, _Patched):
            return row.located.floats
        schema = cast(_Decoded, row).dec.schema
        return self._floats.get(id(schema), []) if schema is not None else []

    def _warmed(self, rows: list[tuple[int, _Row]]) -> bool:
        """Whether ``_drift_patched`` may do the batch: every record patched in place with
        one layout, and every feature past its warm-up (as ``_numeric`` would find it)."""
        first = rows[0][1]
        if not isinstance(first, _Patched):
            return False
        layout = first.located
        if any(not isinstance(row, _Patched) or row.located is not layout for _, row in rows):
            return False
        warmup = self.config.warmup
        return all(name in self._stats and self._stats[name].n >= warmup for name in self._names)

    def _drift_patched(
        self,
        rows: list[tuple[int, _Row]],
        keys: np.ndarray | None,
        i: float,
        out: list[Revalued],
        where: Callable[[int], str],
    ) -> list[Revalued]:
        """``_compute`` and the writing for flat Avro records of one layout once the
        warm-up is over: one (records × features) array instead of a column per feature,
        or plain additions for shifts alone, with the same operations per value as
        ``_numeric`` (``_moved``), so the results are the same."""
        patched = cast(list[tuple[int, _Patched]], rows)
        olds = [row.values for _, row in patched]
        try:
            if self._shifts_only:  # per value, the float64 sum ``_moved`` makes: x + shift * i
                deltas = [shift * i for shift in self._shifts]
                news = [[x + d for x, d in zip(old, deltas, strict=True)] for old in olds]
            else:
                y = np.array(olds, dtype=np.float64)
                for f, (name, spec) in enumerate(self.config.features.items()):
                    y[:, f] = _moved(spec, self._stats[name], y[:, f], keys, f, i)
                news = y.tolist()
        except Exception as exc:  # a bug must not stop the bridge: the batch passes unchanged
            for index, _ in patched:
                self.report(where(index), exc)
            return out
        kinds = patched[0][1].located.kinds
        ints = [f for f, kind in enumerate(kinds) if kind in mutate.INT_RANGE]
        floats = patched[0][1].located.floats
        rounded = round(i, 6)
        for (index, row), old, new in zip(patched, olds, news, strict=True):
            try:
                for f in ints:
                    new[f] = round(new[f])  # an integer feature stays an integer
                for f in floats:
                    new[f] = _as_float32(new[f])  # what the field will hold
                if all(map(ne, new, old)):  # every feature changed (the common case)
                    located = row.located
                    out[index] = located.rewrite(row.data, row.found, new), (rounded, old, new)
                    continue
                # one type per column here: equal values are unchanged ones
                kept = [_KEEP if n == o else n for o, n in zip(old, new, strict=True)]
                out[index] = _written(row, old, kept, rounded)
            except Exception as exc:
                self.report(where(index), exc)
        return out

    def describe(self, note: Any) -> dict[str, Any]:
        """(intensity, old values, new values or ``_KEEP``) as the ledger's detail."""
        intensity, olds, news = note
        features = {
            name: {"old": old, "new": new}
            for name, old, new in zip(self._names, olds, news, strict=True)
            if new is not _KEEP
        }
        return {"intensity": intensity, "features": features}

    # -- reading and writing one record --------------------------------------------

    def _rows(
        self, values: list[bytes | None], where: Callable[[int], str]
    ) -> list[tuple[int, _Row]]:
        """(index, row) of each value that has the features (the others: outside the
        ``where`` segment, or bad input, reported, which passes unchanged). Flat Avro
        records are read from their bytes (``_Patched``), the rest decoded."""
        rows: list[tuple[int, _Row]] = []
        codec = self.ctx.codec
        find = self._layouts.find if self._patchable and isinstance(codec, AvroCodec) else None
        for i, data in enumerate(values):
            try:
                if find is not None:
                    located, start = find(codec, data)
                    if located is not None:
                        assert data is not None  # locate refuses tombstones
                        rows.append((i, _Patched(data, located, located.read_record(data, start))))
                        continue
                row = self._decoded(data)
            except Exception as exc:  # bad input passes unchanged, reported
                self.report(where(i), exc)
                continue
            if row is not None:
                rows.append((i, row))
        return rows

    def _decoded(self, data: bytes | None) -> _Decoded | None:
        """The record, decoded, with its feature values (None: outside the ``where``
        segment)."""
        codec = self.ctx.codec
        dec = codec.decode(data)
        if not isinstance(dec.value, dict):
            raise FieldError("not_a_record", "the value is not a record")
        self._check(dec.schema)
        value = dec.value
        for name in self._names:
            if name not in value:
                raise FieldError("unknown_field", f"field {name!r} is not in the record")
        where = self.config.where
        if where and any(value.get(k) != v for k, v in where.items()):
            return None
        row = _Decoded(codec, dec, value, self._names)
        self._check_values(row.values)
        return row

    def _check_values(self, values: list[Any]) -> None:
        """Values a schema did not vouch for (JSON, unions) must suit their drift."""
        for (name, spec), v in zip(self.config.features.items(), values, strict=True):
            if v is None:
                continue
            if spec.numeric and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise FieldError("wrong_type", f"{name!r} is a {type(v).__name__}, not a number")
            if spec.numeric and isinstance(v, int) and not -_FLOAT_MAX <= v <= _FLOAT_MAX:
                # caught here, per record: in the batch's numpy column it would fail them all
                raise FieldError("out_of_range", f"{name!r} is {v}, beyond a float64")
            if not spec.numeric and not isinstance(v, (str, int, float)):
                raise FieldError("wrong_type", f"{name!r} is a {type(v).__name__}, not a category")

    def _check(self, schema: Any) -> None:
        if schema is None or id(schema) in self._checked:
            return
        fields = mutate.fields(schema.raw)
        for name, spec in self.config.features.items():
            if name not in fields:
                raise FieldError("unknown_field", f"field {name!r} is not in the writer schema")
            kind = mutate.type_name(fields[name]["type"])
            if spec.numeric and kind not in mutate.NUMERIC:
                raise FieldError("wrong_type", f"numeric drift on {name!r} of type {kind}")
            if spec.null_rate and not mutate.nullable(fields[name]["type"]):
                raise FieldError("wrong_type", f"null_rate on non-nullable field {name!r}")
        self._floats[id(schema)] = [
            f
            for f, name in enumerate(self._names)
            if mutate.type_name(fields[name]["type"]) == "float"
        ]
        self._checked.add(id(schema))

    # -- the drift itself, column by column ----------------------------------------

    def _compute(self, columns: list[list[Any]], keys: Any, i: float) -> list[list[Any]]:
        """New values per feature and record (``_KEEP``: unchanged). ``keys``: a uint64
        array, or None when no feature draws (``_keyed``)."""
        news = []
        for f, (name, spec) in enumerate(self.config.features.items()):
            old = columns[f]
            new: list[Any] = [_KEEP] * len(old)
            alive = [j for j, v in enumerate(old) if v is not None]
            if spec.null_rate is not None:
                nulled = _draws(keys, f, "null") < spec.null_rate * i
                for j in alive:
                    if nulled[j]:
                        new[j] = None
                alive = [j for j in alive if not nulled[j]]
            if len(alive) == len(old):  # no nulls: the feature's column as it is
                values, live = old, keys
            else:
                values = [old[j] for j in alive]
                live = keys[alive] if keys is not None else None
            if alive:
                if spec.numeric:
                    changed = self._numeric(name, spec, values, live, f, i)
                else:
                    changed = self._categorical(spec, values, live, f, i)
                if values is old:
                    new = changed
                else:
                    for j, value in zip(alive, changed, strict=True):
                        new[j] = value
            news.append(new)
        return news

    def _numeric(
        self, name: str, spec: FeatureDrift, values: list[Any], keys: np.ndarray, f: int, i: float
    ) -> list[Any]:
        x = np.array(values, dtype=np.float64)
        stats = self._stats.setdefault(name, RunningStats(self.config.warmup))
        warming = np.zeros(len(values), dtype=bool)
        k = 0
        while k < len(values) and stats.n < self.config.warmup:  # the warm-up, in order
            stats.add(float(x[k]))
            warming[k] = stats.n < self.config.warmup
            k += 1
        y = _moved(spec, stats, x, keys, f, i)
        if spec.unit == "sigma" or spec.scale is not None:
            y[warming] = x[warming]  # no reference yet: warming records pass unchanged
        out: list[Any] = y.tolist()  # Python floats; an integer feature stays an integer
        for k, v in enumerate(values):
            if isinstance(v, int):
                out[k] = round(out[k])
        return out

    def _categorical(
        self, spec: FeatureDrift, values: list[Any], keys: np.ndarray, f: int, i: float
    ) -> list[Any]:
        remap = _draws(keys, f, "remap") if spec.remap is not None else None
        novel = _draws(keys, f, "new") if spec.new_category is not None else None
        mix = _draws(keys, f, "mix") if spec.mix is not None else None
        pick = _draws(keys, f, "pick") if spec.mix is not None else None
        to = spec.remap or {}
        targets = list(spec.mix or ())  # mix: cumulative frequencies, worked out once
        edges = list(accumulate((spec.mix or {}).values()))
        out: list[Any] = [_KEEP] * len(values)
        for k, v in enumerate(values):
            if remap is not None and v in to and remap[k] < spec.p * i:
                out[k] = to[v]
            elif novel is not None and novel[k] < spec.rate * i:
                out[k] = spec.new_category
            elif mix is not None and pick is not None and mix[k] < i:
                out[k] = targets[min(bisect.bisect_right(edges, pick[k]), len(targets) - 1)]
        return out


class _Row(ABC):
    """One record's feature values and how to write changed ones back."""

    values: list[Any]

    @abstractmethod
    def write(self, news: list[Any]) -> bytes:
        """The record with each feature's new value (``_KEEP``: as it is)."""


class _Decoded(_Row):
    def __init__(self, codec: Any, dec: Any, value: dict[str, Any], names: list[str]) -> None:
        self.codec, self.dec, self.value, self.names = codec, dec, value, names
        self.values = [value.get(name) for name in names]

    def write(self, news: list[Any]) -> bytes:
        value = dict(self.value)
        for name, new in zip(self.names, news, strict=True):
            if new is not _KEEP:
                value[name] = new  # one its field cannot hold: refused by the encode
        return bytes(self.codec.encode(value, self.dec.schema, self.dec.schema_id))


class _Patched(_Row):
    """A flat Avro record whose numeric fields are rewritten in its bytes."""

    def __init__(
        self, data: bytes, located: Spans, found: list[tuple[int, int, float | int]]
    ) -> None:
        self.data, self.located, self.found = data, located, found
        self.values = [v for _, _, v in found]

    def write(self, news: list[Any]) -> bytes:
        if _KEEP in news:  # no nulls here (not patchable): None means "keep" to ``Spans``
            news = [None if n is _KEEP else n for n in news]
        return self.located.rewrite(self.data, self.found, news)


_FLOAT32 = struct.Struct("<f")


def _as_float32(value: float) -> float:
    """What an Avro ``float`` field holds of ``value`` (a 24-bit mantissa): the ledger then
    says what the shadow holds, and a change too small for the field is none."""
    try:
        return cast(float, _FLOAT32.unpack(_FLOAT32.pack(value))[0])
    except OverflowError as exc:
        raise FieldError("out_of_range", f"{value} does not fit an Avro float") from exc


def _narrowed(news: Sequence[Any], floats: list[int]) -> Sequence[Any]:
    """``news`` with the values of ``floats`` features as an Avro ``float`` holds them."""
    if not floats:
        return news
    out = list(news)
    for f in floats:
        if out[f] is not _KEEP and out[f] is not None:
            out[f] = _as_float32(out[f])
    return out


def _written(row: _Row, olds: Any, kept: list[Any], intensity: float) -> Revalued:
    """``row`` with its changed features written, and the note ``describe`` reads; None
    when no feature changed (``kept``: new values, ``_KEEP`` for unchanged ones)."""
    if kept.count(_KEEP) == len(kept):
        return None
    return row.write(kept), (intensity, olds, kept)


def _moved(
    spec: FeatureDrift, stats: RunningStats, x: np.ndarray, keys: Any, f: int, i: float
) -> np.ndarray:
    """A numeric feature's column drifted at intensity ``i``: scale about the mean, then
    shift, then noise (units of σ when ``unit: sigma``). ``x`` is left as it is."""
    unit = stats.sigma if spec.unit == "sigma" else 1.0
    y = x
    if spec.scale is not None:
        y = stats.mean + (y - stats.mean) * (1 + (spec.scale - 1) * i)
    if spec.shift is not None:
        y = y + spec.shift * unit * i
    if spec.noise is not None:
        y = y + _gauss(keys, f) * (spec.noise * unit * i)
    return y


_SALTS: dict[tuple[int, str], int] = {}


def _draws(keys: np.ndarray, feature: int, purpose: str) -> np.ndarray:
    """A uniform draw per record for one (feature, purpose): independent of the batch."""
    salt = _SALTS.get((feature, purpose))
    if salt is None:
        code = sum(ord(c) << (8 * n) for n, c in enumerate(purpose[:6]))
        salt = _SALTS[(feature, purpose)] = splitmix(feature << 48 ^ code)
    return keyed_uniforms(keys, salt)


def _gauss(keys: np.ndarray, feature: int) -> np.ndarray:
    """Standard normal draws (Box-Muller) from two uniforms per record."""
    u1, u2 = _draws(keys, feature, "gauss1"), _draws(keys, feature, "gauss2")
    gauss: np.ndarray = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)
    return gauss


_KEEP = object()
_FLOAT_MAX = sys.float_info.max
