"""A pattern route on the real broker: every matching topic is bridged to its own
shadow, one created after the bridge started included; shadows are never read back."""

from __future__ import annotations

import pytest

from streamchaos.kafkatools import create_topics, delete_topics, produce_all, unique_name
from tests.integration.conftest import shadow_count, wait_until

pytestmark = pytest.mark.integration


def records(topic: str, n: int) -> list[dict]:
    return [{"topic": topic, "key": b"k%d" % i, "value": b"v%d" % i} for i in range(n)]


def test_a_topic_created_later_is_bridged_to_its_own_shadow(kafka_bootstrap, chaos_bridge):
    prefix = unique_name("feat")
    first, later, other = f"{prefix}.a", f"{prefix}.b", unique_name("other")
    topics = [first, later, other, f"{first}.shadow", f"{later}.shadow"]
    create_topics(kafka_bootstrap, [first, other], 2)
    try:
        produce_all(kafka_bootstrap, records(first, 300) + records(other, 50))
        route = {"source": f"^{prefix}\\..*", "shadow": "{topic}.shadow", "create_shadow": True}
        drop = {"type": "drop", "fraction": 0.1}
        bridge = chaos_bridge(
            {"routes": [{**route, "faults": [drop]}], "bridge": {"topic_refresh": "1s"}}
        )
        dropped = lambda topic: sum(  # noqa: E731
            e["kind"] == "injection" and e["route"] == topic for e in bridge.ledger_entries
        )
        wait_until(
            lambda: shadow_count(kafka_bootstrap, f"{first}.shadow") + dropped(first) == 300,
            60,
            f"{first} bridged",
        )
        create_topics(kafka_bootstrap, [later], 1)
        produce_all(kafka_bootstrap, records(later, 200))
        wait_until(
            lambda: (
                f'streamchaos_records_consumed_total{{route="{later}"}}' in bridge.counters()
                and shadow_count(kafka_bootstrap, f"{later}.shadow") + dropped(later) == 200
            ),
            90,
            f"{later}, created after the start, bridged",
        )
        assert 0 < dropped(first) < 300 and 0 < dropped(later) < 200  # its faults came too
        matches = [e["route"] for e in bridge.ledger_entries if e["kind"] == "plan_change"]
        assert matches == [first, later]  # when each route began, in the ledger
        names = set(bridge.counters())
        assert not any(other in n or ".shadow.shadow" in n for n in names)  # no other topic
        assert bridge.stop() == 0
    finally:
        delete_topics(kafka_bootstrap, topics)


def test_a_pattern_that_matches_nothing_yet_starts_and_waits_for_its_topics(
    kafka_bootstrap, chaos_bridge
):
    prefix = unique_name("later")
    topic = f"{prefix}.x"
    route = {"source": f"^{prefix}\\..*", "shadow": "{topic}.shadow", "create_shadow": True}
    bridge = chaos_bridge(
        {"routes": [route], "bridge": {"topic_refresh": "1s"}, "alerts": {"interval": "200ms"}},
        wait=False,  # nothing to be assigned yet
    )
    try:
        create_topics(kafka_bootstrap, [topic], 1)
        produce_all(kafka_bootstrap, records(topic, 100))
        wait_until(
            lambda: shadow_count(kafka_bootstrap, f"{topic}.shadow") == 100, 90, f"{topic} bridged"
        )
        [match] = [e for e in bridge.ledger_entries if e["kind"] == "plan_change"]
        assert match["route"] == topic and match["detail"]["action"] == "match"
        assert bridge.stop() == 0
    finally:
        delete_topics(kafka_bootstrap, [topic, f"{topic}.shadow"])
