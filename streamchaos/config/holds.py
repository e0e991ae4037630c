"""``bridge.hold_horizon``: which holds go to the long-hold store, and what it needs.

A fault that may hold a record longer than the horizon (``delay``, ``label_delay``)
keeps such records in a Kafka topic beside the route's shadow, ``hold_topic``, instead
of memory; shorter holds stay in memory.
"""

from __future__ import annotations

from typing import Any

from streamchaos.faults.base import HoldingFault
from streamchaos.faults.hold import LongHoldingConfig
from streamchaos.faults.registry import FAULTS
from streamchaos.hold_record import hold_topic


def longest_hold(faults: list[Any], horizon: float | None) -> float | None:
    """The longest hold of ``faults`` beyond ``horizon`` (0.0: none goes beyond it)."""
    if horizon is None:
        return 0.0
    longest = 0.0
    for fault in faults:
        if isinstance(fault, LongHoldingConfig):
            bound = fault.longest()
            if bound is None:
                return None
            if bound > horizon:
                longest = max(longest, bound)
    return longest


def shortest_hold(faults: list[Any], horizon: float) -> float:
    """The shortest hold of ``faults`` that goes beyond ``horizon`` (``horizon`` itself
    when some are drawn from below it)."""
    bounds = [
        max(horizon, fault.shortest())
        for fault in faults
        if isinstance(fault, LongHoldingConfig) and longest_hold([fault], horizon) != 0.0
    ]
    return min(bounds, default=horizon)


RETENTION_MARGIN = 7 * 86_400.0  # a long-hold topic keeps a record this long past its due


def hold_retention_ms(longest: float) -> int:
    """How long a long-hold topic must keep its records (each is stamped when held): its
    longest hold, and a week for a bridge that was down when they came due."""
    return round((longest + RETENTION_MARGIN) * 1000)


def hold_topics(cfg: Any) -> dict[str, int]:
    """The hold topic of each route that may hold beyond the horizon, with the partitions
    it is created with."""
    horizon, suffix = cfg.bridge.hold_horizon, cfg.safety.shadow_suffix
    return {
        hold_topic(route.shadow, suffix): cfg.bridge.hold_lanes
        for route in cfg.routes
        if longest_hold(route.faults, horizon) != 0.0
    }


def long_hold_problems(cfg: Any) -> list[str]:
    """Why long holds cannot run as configured, one line per field (empty: they can)."""
    horizon = cfg.bridge.hold_horizon
    if horizon is None:
        return []
    problems = []
    sources = {route.source for route in cfg.routes}
    shadows = {route.shadow for route in cfg.routes}
    for i, route in enumerate(cfg.routes):
        longest = longest_hold(route.faults, horizon)
        if longest == 0.0:
            continue
        where = f"routes[{i}]"
        if longest is None:
            problems.append(
                f"{where}.faults: an exponential delay has no bound beyond "
                f"bridge.hold_horizon ({horizon:g}s): give it a cap (label_delay: the class's cap)"
            )
        if cfg.kafka.shadow is not None:
            problems.append(
                f"bridge.hold_horizon: {where} holds beyond it, and the long-hold topic must "
                "be on the cluster the bridge reads (kafka.shadow is another one)"
            )
        if route.is_pattern:
            problems.append(
                f"{where}.source: a pattern route's faults cannot hold beyond "
                f"bridge.hold_horizon ({horizon:g}s) yet"
            )
            continue
        topic = hold_topic(route.shadow, cfg.safety.shadow_suffix)
        if topic in sources or topic in shadows:
            problems.append(
                f"{where}.shadow: its long-hold topic {topic!r} is a source or shadow topic"
            )
        long_at = next(j for j, f in enumerate(route.faults) if longest_hold([f], horizon) != 0.0)
        for j, fault in enumerate(route.faults[long_at + 1 :], start=long_at + 1):
            if issubclass(FAULTS[fault.type], HoldingFault):
                problems.append(
                    f"{where}.faults[{j}]: {fault.type} holds records after "
                    f"faults[{long_at}], which may hold beyond bridge.hold_horizon: put the "
                    "long hold last among the route's holding faults"
                )
    return problems
