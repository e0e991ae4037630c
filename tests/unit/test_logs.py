"""A client error that repeats is one line per interval, with the count; request logs of
HTTP libraries stay out of INFO."""

from __future__ import annotations

import logging

from streamchaos.logs import Repeats, setup


def test_repeats_are_counted_not_logged(caplog):
    clock = [0.0]
    repeats = Repeats(logging.getLogger("t"), interval=30.0, clock=lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="t")
    for step in range(1000):  # 100 a second for 10 s: a broker outage
        clock[0] = step / 100
        repeats.warning("kafka _TRANSPORT", f"kafka: connect failed after {step} ms")
        repeats.warning("kafka _ALL_BROKERS_DOWN", "kafka: all brokers down")
    assert [r.getMessage() for r in caplog.records] == [
        "kafka: connect failed after 0 ms",
        "kafka: all brokers down",
    ]
    clock[0] = 31.0
    repeats.warning("kafka _TRANSPORT", "kafka: connect failed after 1 ms")
    assert caplog.records[-1].getMessage() == (
        "kafka: connect failed after 1 ms (and 999 more like it in the last 31 s)"
    )
    repeats.flush()  # at shutdown: what is still counted
    assert (
        caplog.records[-1].getMessage() == "kafka: all brokers down (999 like it in the last 31 s)"
    )
    assert len(caplog.records) == 4


def test_http_request_logs_are_debug_only():
    setup(logging.INFO)
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    setup(logging.DEBUG)
    assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)
    setup(logging.INFO)


def test_a_burst_that_stopped_is_reported_when_its_interval_is_over(caplog):
    clock = [0.0]
    repeats = Repeats(logging.getLogger("t"), interval=30.0, clock=lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="t")
    for step in range(800):  # 8 s of errors, then none
        clock[0] = step / 100
        repeats.warning("k", "kafka: down")
        repeats.tick()
    assert len(caplog.records) == 1
    clock[0] = 29.0
    repeats.tick()
    assert len(caplog.records) == 1  # not yet: the interval is 30 s
    clock[0] = 30.5
    repeats.tick()
    assert caplog.records[-1].getMessage() == "kafka: down (799 like it in the last 30 s)"
    repeats.flush()
    assert len(caplog.records) == 2  # nothing counted twice
