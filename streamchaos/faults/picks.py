"""The records one stage picked in one batch, as its fault sees them.

A fault gets its picks of a whole consumed batch at once (or one record at a time, from
the reference in the tests: the answer must be the same). ``seeds[i]`` seeds the fault's
draws for record ``i`` (a pure function of the record's coordinates, so a replayed offset
repeats them); values are decoded at most once per batch, whichever stages ask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from streamchaos.record import Item, Record

if TYPE_CHECKING:
    from streamchaos.codec.avro import Codec, Decoded


class Decodes:
    """Decoded values of one batch, by value object: a value no stage changed is decoded
    once, however many stages read it. Kept per batch only (values die with it)."""

    __slots__ = ("_cache", "codec")

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._cache: dict[int, tuple[bytes | None, Decoded]] = {}

    def decode(self, value: bytes | None) -> Decoded:
        hit = self._cache.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        decoded = self.codec.decode(value)  # Undecodable: not cached, raised again
        self._cache[id(value)] = (value, decoded)
        return decoded


class Picks:
    """Items picked by one stage, in order, with their draw seeds and a shared decoder."""

    __slots__ = ("_seeds", "_seeds_of", "decodes", "items")

    def __init__(
        self,
        items: Sequence[Item],
        seeds_of: Callable[[list[int]], list[int]],
        decodes: Decodes | None = None,
    ) -> None:
        self.items = items
        self._seeds_of = seeds_of
        self._seeds: list[int] | None = None
        self.decodes = decodes

    def __len__(self) -> int:
        return len(self.items)

    @property
    def records(self) -> list[Record]:
        return [item.record for item in self.items]

    @property
    def values(self) -> list[bytes | None]:
        return [item.value for item in self.items]

    @property
    def seeds(self) -> list[int]:
        """``seeds[i]``: what the fault seeds its generator with for record ``i``."""
        if self._seeds is None:
            self._seeds = self._seeds_of([item.offset for item in self.items])
        return self._seeds

    def only(self, i: int) -> Picks:
        """Record ``i`` alone, with the same seeds and decoder."""
        return Picks([self.items[i]], self._seeds_of, self.decodes)

    def where(self, i: int) -> str:
        return self.items[i].record.where

    def decode(self, i: int) -> Decoded:
        """Record ``i``'s value decoded by the route's codec (``Undecodable`` if it is not)."""
        assert self.decodes is not None, "this route has no codec"
        return self.decodes.decode(self.items[i].value)


def no_seeds(offsets: list[int]) -> list[int]:
    return [0] * len(offsets)


def picks_of(
    records: Sequence[Record],
    seeds: Callable[[list[int]], list[int]] = no_seeds,
    codec: Codec | None = None,
) -> Picks:
    """Picks of plain records (for doctests and unit tests of one fault); a value fault
    needs the route's ``codec``."""
    return Picks([Item(r) for r in records], seeds, Decodes(codec) if codec else None)
