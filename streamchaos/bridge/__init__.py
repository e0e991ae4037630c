"""Kafka I/O: the bridge loop, the hot loop, the commit sequence, shadow topics."""

from streamchaos.bridge.checkpoint import OffsetTracker
from streamchaos.bridge.runner import Bridge

__all__ = ["Bridge", "OffsetTracker"]
