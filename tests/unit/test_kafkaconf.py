from streamchaos.config import config_from_dict
from streamchaos.kafkaconf import consumer_conf, producer_conf


def make(**kafka):
    return config_from_dict(
        {"experiment": "e", "kafka": kafka, "routes": [{"source": "a", "shadow": "a.shadow"}]},
        env={},
    )


def test_tuned_defaults_and_safety_keys():
    conf = consumer_conf(make())
    assert conf["fetch.queue.backoff.ms"] == 20
    assert conf["partition.assignment.strategy"] == "cooperative-sticky"
    assert conf["group.id"] == "streamchaos.e"
    assert producer_conf(make())["enable.idempotence"] is True


def test_user_properties_win_but_not_over_commit_safety():
    cfg = make(
        consumer={"fetch.queue.backoff.ms": 50, "enable.auto.commit": True},
        producer={"linger.ms": 20},
    )
    conf = consumer_conf(cfg)
    assert conf["fetch.queue.backoff.ms"] == 50
    assert conf["enable.auto.commit"] is False
    assert producer_conf(cfg)["linger.ms"] == 20


def test_the_producer_reports_what_is_asked_and_keeps_the_order():
    """Reports come for the records produced with a callback, in order: the commit rests
    on both (``bridge/checkpoint.py``)."""
    conf = producer_conf(make())
    assert conf["delivery.report.only.error"] is False and conf["enable.idempotence"] is True
