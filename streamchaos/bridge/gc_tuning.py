"""Fewer garbage collections while the bridge loops (process-wide, so opt-in).

Each consumed batch allocates thousands of short-lived objects (messages, header lists), so
with Python's default thresholds the collector ran every ~500 records; docs/benchmarks.md
has the bridge with and without this. Cycles are still collected, just less often.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

GC_GEN0_THRESHOLD = 50_000
"""Allocations between young-generation collections while ``run`` loops (default 700)."""
GC_THRESHOLDS = (GC_GEN0_THRESHOLD, 50, 100)  # all three generations (Python's: 700, 10, 10)

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections(enabled: bool) -> Iterator[None]:
    """Raise the collector's thresholds for the duration. Bridges running side by side
    share the setting; the last one out restores the old values."""
    global _users, _saved
    if not enabled:
        yield
        return
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*GC_THRESHOLDS)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                gc.set_threshold(*_saved)
