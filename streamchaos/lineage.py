"""Where each shadow record came from: the ledger's lineage lines, or a lineage header.

The bridge writes one ``lineage`` line per run of records it produced to a shadow
partition (``bridge/checkpoint.py`` proves the run landed contiguously): the shadow offset
of its first record and the source offsets of all of them, in order, as
``[first offset, count]`` segments. With ``bridge.lineage_header`` set (or where the key
chose the shadow partition) each record carries ``topic/partition/offset`` itself.

>>> lin = Lineage.of([{"kind": "lineage", "route": "src",
...     "source": {"topic": "src", "partition": 0, "offsets": [[5, 2], [9, 1]]},
...     "shadow": {"topic": "src.shadow", "partition": 0, "offset": 100}}])
>>> [lin.origin("src.shadow", 0, o) for o in (100, 101, 102, 103)]
[('src', 0, 5), ('src', 0, 6), ('src', 0, 9), None]
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Any

LINEAGE_HEADER = "streamchaos-origin"  # shadow record header: source topic/partition/offset
Origin = tuple[str, int, int]  # source topic, partition, offset


class Lineage:
    """Shadow coordinates → source coordinates, from lineage lines."""

    def __init__(self) -> None:
        # per (shadow topic, partition): sorted shadow offsets where a stretch starts, and
        # for each, (source topic, source partition, first source offset, count)
        self._starts: dict[tuple[str, int], list[int]] = {}
        self._stretches: dict[tuple[str, int], list[tuple[str, int, int, int]]] = {}

    @classmethod
    def of(cls, entries: Iterable[Mapping[str, Any]]) -> Lineage:
        lineage = cls()
        rows: dict[tuple[str, int], list[tuple[int, tuple[str, int, int, int]]]] = {}
        for entry in entries:
            if entry.get("kind") != "lineage":
                continue
            src, dst = entry["source"], entry["shadow"]
            at = dst["offset"]
            for first, count in src["offsets"]:
                stretch = (src["topic"], src["partition"], first, count)
                rows.setdefault((dst["topic"], dst["partition"]), []).append((at, stretch))
                at += count
        for key, stretches in rows.items():
            stretches.sort()
            lineage._starts[key] = [at for at, _ in stretches]
            lineage._stretches[key] = [s for _, s in stretches]
        return lineage

    def origin(self, topic: str, partition: int, offset: int) -> Origin | None:
        """The source record of the shadow record at these coordinates, if a line says."""
        starts = self._starts.get((topic, partition))
        if not starts:
            return None
        i = bisect_right(starts, offset) - 1
        if i < 0:
            return None
        src_topic, src_part, first, count = self._stretches[(topic, partition)][i]
        step = offset - starts[i]
        return (src_topic, src_part, first + step) if step < count else None

    def origin_of(self, msg: Any, header: str | None = LINEAGE_HEADER) -> Origin | None:
        """A consumed shadow record's origin: its lineage header when it has one, else
        the lines."""
        if header is not None:
            for key, value in msg.headers() or ():
                if key == header:
                    return parse_origin(value)
        return self.origin(msg.topic(), msg.partition(), msg.offset())


def origin_prefix(topic: str, partition: int) -> bytes:
    """The lineage header's value up to the offset: ``prefix + b"%d" % offset`` is one."""
    return f"{topic}/{partition}/".encode()


def parse_origin(value: bytes | str | None) -> Origin | None:
    """``b"topic/partition/offset"`` -> (topic, partition, offset); None if malformed."""
    try:
        text = value.decode("ascii") if isinstance(value, bytes) else value or ""
        topic, part, off = text.rsplit("/", 2)
        return topic, int(part), int(off)
    except (UnicodeDecodeError, ValueError):
        return None
