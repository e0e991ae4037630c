"""A consumed batch cut into runs: consecutive offsets of one partition of one topic,
each of which the route's pipeline and ``checkpoint.Run`` take whole."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from operator import ne
from typing import Any

import numpy as np
from confluent_kafka import Message

_PARTITION = Message.partition


def runs(msgs: Sequence[Any], only_topic: str) -> list[tuple[int, int]]:
    """``msgs`` (records, no error events) as runs [start, end) in order. ``only_topic``:
    the one topic every record comes from, if the bridge reads only one.

    The partitions are compared all at once; within one partition offsets only grow, so a
    stretch whose last offset is as far from its first as its length says is one run, and
    one that is not is cut where the offsets jump, by bisection."""
    n = len(msgs)
    if n == 0:
        return []
    parts = list(map(_PARTITION, msgs))
    if only_topic and parts.count(parts[0]) == n:  # one partition: no array needed
        bounds = [0, n]
    else:
        array = np.array(parts)
        part_cuts = array[1:] != array[:-1]
        if not only_topic:  # several routes: a topic change cuts too
            topics = [msg.topic() for msg in msgs]
            part_cuts |= np.fromiter(map(ne, topics[1:], topics[:-1]), dtype=bool, count=n - 1)
        bounds = [0, *(np.flatnonzero(part_cuts) + 1).tolist(), n]
    out: list[tuple[int, int]] = []
    for lo, hi in pairwise(bounds):
        while lo < hi:
            end = _contiguous_end(msgs, lo, hi)
            out.append((lo, end))
            lo = end
    return out


def _contiguous_end(msgs: Sequence[Any], lo: int, hi: int) -> int:
    """The end of the consecutive offsets from ``msgs[lo]`` in ``msgs[lo:hi]`` (one
    partition's): ``offset - index`` never falls; bisection finds where it rises."""
    first = msgs[lo].offset() - lo
    if msgs[hi - 1].offset() - (hi - 1) == first:
        return hi
    good, bad = lo, hi - 1  # msgs[good] continues the run, msgs[bad] does not
    while bad - good > 1:
        mid = (good + bad) // 2
        if msgs[mid].offset() - mid == first:
            good = mid
        else:
            bad = mid
    return bad
