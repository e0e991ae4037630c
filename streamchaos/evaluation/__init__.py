"""The evaluation side: traffic to test with, a reference detector, and the judges.

``synth`` produces synthetic feature traffic; ``watch`` (the detector) and
``watch_runner`` (its Kafka loop) are the reference detector; ``episodes``, ``alerts``,
``scoring``, ``scorecard`` and ``scorer`` score detectors against the ledger's fault
episodes (with NAB: ``scoring_nab``; a picture: ``timeline``); ``audit`` and
``reconcile`` check that every source offset is accounted for.

It reads what the bridge wrote (``streamchaos.ledger``, the shadow topics) and never
imports the bridge, the engine, the faults or the config: ``tests/unit/test_architecture.py``
holds it to that. The pure scoring API is re-exported here:

>>> from streamchaos.evaluation import Alert, Episode, score
>>> score([Episode("f", "drift", "r", 10.0, 20.0)], [Alert(12.0)], max_delay=5.0).recall
1.0
"""

from streamchaos.evaluation.alerts import Alert, alerts_from_jsonl, alerts_from_prometheus
from streamchaos.evaluation.episodes import Episode, episodes_from_ledger
from streamchaos.evaluation.scorecard import Scorecard
from streamchaos.evaluation.scoring import score

__all__ = [
    "Alert",
    "Episode",
    "Scorecard",
    "alerts_from_jsonl",
    "alerts_from_prometheus",
    "episodes_from_ledger",
    "score",
]
