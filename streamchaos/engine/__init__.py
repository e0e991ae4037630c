"""The engine: selection and the stage pipeline over a batch — pure, no Kafka."""

from streamchaos.engine.pipeline import EpisodeEvent, Pipeline, Plan
from streamchaos.engine.stage import Stage

__all__ = ["EpisodeEvent", "Pipeline", "Plan", "Stage"]
