"""The engine: selection and the stage pipeline over a batch — pure, no Kafka."""

from streamchaos.engine.clock import EpisodeEvent, EventClock, WallClock
from streamchaos.engine.pipeline import Pipeline
from streamchaos.engine.plan import Deferred, Plan, Released
from streamchaos.engine.stage import Stage

__all__ = [
    "Deferred",
    "EpisodeEvent",
    "EventClock",
    "Pipeline",
    "Plan",
    "Released",
    "Stage",
    "WallClock",
]
