"""The engine: selection and the stage pipeline over a batch — pure, no Kafka."""

from streamchaos.engine.clock import EpisodeEvent, EventClock, WallClock
from streamchaos.engine.pipeline import Pipeline, Plan
from streamchaos.engine.stage import Stage

__all__ = ["EpisodeEvent", "EventClock", "Pipeline", "Plan", "Stage", "WallClock"]
