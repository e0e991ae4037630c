"""Kafka I/O: the bridge loop, offset tracking, shadow topic preparation."""

from streamchaos.bridge.offsets import OffsetTracker
from streamchaos.bridge.runner import Bridge

__all__ = ["Bridge", "OffsetTracker"]
