"""Deterministic selection: is record X chosen by fault F? (DESIGN invariant 3)

A pure function of (seed, fault name, topic, partition, offset) — or (seed, fault name, key)
in key mode — so replaying the same input injects into the same records. The per-offset
hash is splitmix64, computed for a whole range of offsets at once with numpy (~15 ns a
record) or one at a time in Python; both give identical draws.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from typing import Any

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment
_TWO53 = float(1 << 53)


def base_seed(*parts: object) -> int:
    """A stable 64-bit seed from any parts (blake2b: slow, but once per fault/partition)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def splitmix(x: int) -> int:
    x = (x + GOLDEN) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def splitmix_array(x: np.ndarray) -> np.ndarray:
    """``splitmix`` of every element of a uint64 array."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(GOLDEN)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = x ^ (x >> np.uint64(31))
    return out


def first_bits_array(seeds: list[int]) -> np.ndarray:
    """``RecordRandom(seed).getrandbits(64)`` of every seed, without the objects: the
    records' draw keys, as a uint64 array."""
    with np.errstate(over="ignore"):
        return splitmix_array(np.array(seeds, dtype=np.uint64) + np.uint64(GOLDEN))


def uniform(base: int, offset: int) -> float:
    """The draw in [0, 1) for one offset."""
    return (splitmix(base ^ offset) >> 11) / _TWO53


def uniforms(base: int, first: int, count: int) -> np.ndarray:
    """Draws for offsets first .. first+count-1, identical to ``uniform`` one by one."""
    return keyed_uniforms(np.arange(first, first + count, dtype=np.uint64), base)


def keyed_uniforms(keys: np.ndarray, salt: int) -> np.ndarray:
    """``(splitmix(key ^ salt) >> 11) / 2**53`` for every key of a uint64 array."""
    x = splitmix_array(keys ^ np.uint64(salt))
    return (x >> np.uint64(11)).astype(np.float64) / _TWO53


def key_uniform(base: int, key: bytes | None) -> float:
    """The draw for an entity key (key mode): all records of a key share it."""
    h = zlib.crc32(key or b"", base & 0xFFFFFFFF)
    return (splitmix(base ^ (h << 32 | h)) >> 11) / _TWO53


class RecordRandom(random.Random):
    """A ``random.Random`` whose whole state is one 64-bit word (splitmix64).

    Faults reseed it for every record they act on (so a replayed offset repeats its draws);
    Mersenne Twister's ``seed()`` costs ~4 µs, this one's a few ns. ``uniform``,
    ``randrange``, ``choice``, ``shuffle``, ``gauss``, ``expovariate``… all work, since
    they are built on ``random()`` and ``getrandbits()``.
    """

    _state = 0

    def seed(self, a: object = None, version: int = 2) -> None:
        self._state = (a if isinstance(a, int) else base_seed(a)) & MASK
        self.gauss_next = None  # ``gauss`` keeps a second value: a new seed drops it

    def _next(self) -> int:
        self._state = (self._state + GOLDEN) & MASK
        return splitmix(self._state)

    def random(self) -> float:
        return (self._next() >> 11) / _TWO53

    def getrandbits(self, k: int) -> int:
        bits, out = 0, 0
        while bits < k:
            out = (out << 64) | self._next()
            bits += 64
        return out >> (bits - k)

    def getstate(self) -> tuple[Any, ...]:
        return (self._state, self.gauss_next)

    def setstate(self, state: tuple[Any, ...]) -> None:
        self._state, self.gauss_next = state
