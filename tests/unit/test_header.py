"""``header``: each mode on records with, without and with repeated headers."""

from __future__ import annotations

import random

import pytest

from streamchaos.config import config_from_dict
from streamchaos.errors import ConfigError
from streamchaos.faults.actions import KEEP
from streamchaos.faults.header import Header, HeaderConfig
from streamchaos.faults.picks import picks_of
from streamchaos.record import Record

H = (
    ("content-type", b"json"),
    ("model-version", b"v7"),
    ("trace", b"t1"),
    ("model-version", b"v7b"),
)


def act(headers, seeds=lambda offs: [o * 7919 for o in offs], **cfg):
    fault = Header(HeaderConfig(header="model-version", **cfg), random.Random(0))
    return fault.act(picks_of([Record("t", 0, 5, b"k", b"v", headers)], seeds), 0.0)[0]


def test_set_changes_every_one_in_place_and_adds_a_missing_one_last():
    change = act(H, value="v6")
    assert change.record.headers == (
        ("content-type", b"json"),
        ("model-version", b"v6"),
        ("trace", b"t1"),
        ("model-version", b"v6"),
    )
    assert change.injection.detail == {
        "mode": "set",
        "header": "model-version",
        "old": "v7",
        "new": "v6",
    }
    added = act((("trace", b"t1"),), value="v6")
    assert added.record.headers == (("trace", b"t1"), ("model-version", b"v6"))
    assert added.injection.detail["old"] is None


def test_remove_and_rename_and_nothing_to_do_without_the_header():
    assert act(H, mode="remove").record.headers == (("content-type", b"json"), ("trace", b"t1"))
    renamed = act(H, mode="rename", to="model_version").record.headers
    assert [n for n, _ in renamed] == ["content-type", "model_version", "trace", "model_version"]
    for mode in ("remove", "rename", "corrupt"):
        extra = {"to": "x"} if mode == "rename" else {}
        assert act((("trace", b"t1"),), mode=mode, **extra) is KEEP


def test_corruptions_are_seeded_per_record():
    first, again = act(H, mode="corrupt"), act(H, mode="corrupt")
    assert first.record.headers == again.record.headers  # the same record, the same bytes
    other = act(H, mode="corrupt", seeds=lambda offs: [1 for _ in offs])
    assert other.record.headers != first.record.headers
    values = [v for n, v in first.record.headers if n == "model-version"]
    assert [len(v) for v in values] == [2, 3] and values != [b"v7", b"v7b"]
    assert [
        v
        for n, v in act(H, mode="corrupt", corruption="empty").record.headers
        if n == "model-version"
    ] == [b"", b""]
    assert [
        v
        for n, v in act(H, mode="corrupt", corruption="truncate").record.headers
        if n == "model-version"
    ] == [b"v", b"v"]


def test_a_change_that_changes_nothing_is_no_injection():
    assert act((("model-version", b"v6"),), value="v6") is KEEP
    assert act((("model-version", b""),), mode="corrupt", corruption="empty") is KEEP


def test_what_each_mode_needs_is_named():
    route = {"source": "s", "shadow": "s.shadow"}
    for fault, field in (
        ({"type": "header", "header": "x"}, "value"),
        ({"type": "header", "header": "x", "mode": "rename"}, "to"),
        ({"type": "header", "header": ""}, "header"),
        ({"type": "header", "header": "x", "mode": "rename", "to": "x"}, "to"),
        ({"type": "header", "header": "x", "value": "\ud800"}, "value"),
    ):
        with pytest.raises(ConfigError, match=rf"faults\[0\].*{field}"):
            config_from_dict({"experiment": "e", "routes": [route | {"faults": [fault]}]}, env={})
