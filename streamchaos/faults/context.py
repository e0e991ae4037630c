"""What a record-level fault may use: the route's codec, where to report trouble, the
join tables of other routes, and how long it may hold a record in memory."""

from __future__ import annotations

from typing import Any

from streamchaos.faults.config import FaultConfig
from streamchaos.joins import Joins, KeyTable


class FaultContext:
    """What a record-level fault may use: the route's codec and where to report trouble.

    The codec may reach a schema registry; everything else stays pure.
    """

    def __init__(self, codec: Any, source: str, shadow: str, joins: Joins | None = None) -> None:
        self.codec = codec
        self.source = source
        self.shadow = shadow
        self.joins = joins if joins is not None else Joins()  # the bridge's, shared by routes
        self.undecodable: Any = lambda reason: None
        self.error: Any = lambda fault, reason, message: None
        self.join_missed: Any = lambda fault: None
        self.horizon: float | None = None  # longer holds go to the long-hold store

    def joined(self, config: FaultConfig) -> KeyTable:
        """The key table of ``config``'s join on this route (the stage made it; made here
        for a fault used without one)."""
        table = self.joins.get(self.source, config.label)
        if table is not None:
            return table
        spec = config.joined
        if spec is None:
            raise ValueError(f"fault {config.label} joins no route")
        return self.joins.table(self.source, config.label, spec)
