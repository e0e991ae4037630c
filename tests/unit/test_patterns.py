"""Pattern routes: which topics they take, and the shadow-only rules on each of them."""

from __future__ import annotations

import pytest

from streamchaos.config import config_from_dict
from streamchaos.config.patterns import expand
from streamchaos.errors import ConfigError


def cfg(*routes, **extra):
    return config_from_dict({"experiment": "e", "routes": list(routes), **extra}, env={})


PATTERN = {"source": r"^features\..*", "shadow": "{topic}.shadow", "format": "json"}


def test_a_pattern_takes_each_matching_topic_to_its_own_shadow_and_never_its_own_output():
    c = cfg(
        {"source": "features.fixed", "shadow": "other.shadow"},
        PATTERN,
        ledger={"topic": "features.ledger"},
    )
    topics = [
        "features.a",
        "features.b",
        "features.a.shadow",  # a shadow: never read
        "features.fixed",  # a route names it
        "features.ledger",  # the ledger
        "payments",  # no match
        "x.features.c",  # the match starts at the name's start
        "__consumer_offsets",
    ]
    expanded, left_out = expand(c, topics)
    assert [(r.source, r.shadow) for r in expanded.routes] == [
        ("features.fixed", "other.shadow"),
        ("features.a", "features.a.shadow"),
        ("features.b", "features.b.shadow"),
    ]
    assert all(r.format == "json" for r in expanded.routes[1:]) and left_out == []
    assert not expanded.has_patterns


def test_a_topic_whose_route_would_break_the_safety_rules_is_left_out_with_the_reason():
    c = cfg({"source": "other", "shadow": "features.x.shadow"}, PATTERN)
    expanded, left_out = expand(c, ["features.x", "features.y"])
    assert [r.source for r in expanded.routes] == ["other", "features.y"]
    [why] = left_out
    assert why.startswith("features.x (matched ^features") and "already the shadow" in why


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ({"source": "feat*", "shadow": "x.shadow"}, "source: 'feat\\*' is not a topic name"),
        ({"source": "^feat(", "shadow": "{topic}.shadow"}, "does not compile"),
        ({"source": "^feat", "shadow": "fixed.shadow"}, "a template with \\{topic\\} once"),
        ({"source": "^feat", "shadow": "{topic}.{topic}.shadow"}, "once"),
        ({"source": "^feat", "shadow": "{topic}.mirror"}, "does not end with safety.shadow_suffix"),
    ],
)
def test_patterns_and_templates_are_checked_at_load(route, problem):
    with pytest.raises(ConfigError, match=problem):
        cfg(route)


def test_no_plan_file_with_patterns():
    with pytest.raises(
        ConfigError, match=r"control\.plan_file: not with a route whose source is a pattern"
    ):
        cfg(PATTERN, control={"plan_file": "plan.json"})


def test_names_the_rules_or_kafka_refuse_and_clashes_with_running_routes_are_left_out():
    copies = {"source": r"^copy\..*", "shadow": "{topic}.shadow"}
    c = cfg(PATTERN, copies, {"source": "^x.*", "shadow": "copy.{topic}.shadow"})
    long = "features." + "z" * 236  # a topic name of 245; its shadow would be 252
    expanded, left_out = expand(c, [long, "_schemas", "features.ok"])
    assert [r.source for r in expanded.routes] == ["features.ok"]
    assert any(why.startswith(long[:20]) and "shadow" in why for why in left_out)
    running = expand(c, ["x1"])[0].routes  # x1 -> copy.x1.shadow, bridged first
    later, left_out = expand(c, ["copy.x1"], running)
    assert [r.source for r in later.routes] == ["x1"]  # copy.x1 would write to x1's shadow
    assert "copy.x1" in left_out[0] and "already the shadow" in left_out[0]
