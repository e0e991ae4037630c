"""Drive one fault by hand in unit tests: its picks in, what comes out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from streamchaos.faults import Fault
from streamchaos.faults.base import FaultContext
from streamchaos.faults.picks import Decodes, Picks
from streamchaos.record import Injection, Item, Record


class Out(NamedTuple):
    """One output of a picked record (``record`` None: dropped)."""

    record: Record | None
    source: Record
    injections: list[Injection]


def attach(fault: Fault, codec: Any, errors: list[Any] | None = None) -> Fault:
    """Give ``fault`` the route's codec, as the engine does; what it reports through
    ``ctx.error`` (fault, reason, message) goes to ``errors``."""
    ctx = FaultContext(codec, "src", "src.shadow")
    if errors is not None:
        ctx.error = lambda *report: errors.append(report)
    fault.ctx = ctx  # type: ignore[attr-defined]
    return fault


def apply(
    fault: Fault, records: Sequence[Record], now: float = 0.0, seeds: Sequence[int] | None = None
) -> list[Out]:
    """``records`` picked together (one batch); ``seeds[i]`` seeds record ``i``'s draws
    (default: its offset)."""
    by_offset = dict(
        zip((r.offset for r in records), seeds or [r.offset for r in records], strict=True)
    )
    items = [Item(r) for r in records]
    codec: Any = getattr(getattr(fault, "ctx", None), "codec", None)
    picks = Picks(
        items, lambda offsets: [by_offset[o] for o in offsets], Decodes(codec) if codec else None
    )
    out: list[Out] = []
    for item, action in zip(items, fault.act(picks, now), strict=True):
        source = item.record
        dropped: list[Item] = []
        for result in action.apply(item, dropped):
            out.append(Out(result.record, source, result.injections))
        out += [Out(None, source, gone.injections) for gone in dropped]
    return out
