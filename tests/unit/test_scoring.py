"""Scoring follows docs/detector-scoring.md to the letter: its golden vectors, each rule, the
exact Poisson interval, and the readers that turn ledgers and alert feeds into inputs."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamchaos.errors import StreamChaosError
from streamchaos.evaluation import (
    Alert,
    Episode,
    alerts_from_jsonl,
    alerts_from_prometheus,
    episodes_from_ledger,
    score,
)
from streamchaos.evaluation.scoring_nab import (
    STANDARD,
    arl0,
    nab_raw,
    poisson_interval,
    scaled_sigmoid,
    wilson,
)


def ep(start, end, fault="f", type_="drift", route="r", **kw):
    return Episode(fault, type_, route, float(start), float(end), **kw)


def alerts(*times, **labels):
    return [Alert(float(t), dict(labels)) for t in times]


# Three episodes; with D = 60 the windows are [100, 220), [300, 390), [600, 760): 370 s.
EPISODES = [ep(100, 160), ep(300, 330), ep(600, 700)]
RUN = {"max_delay": 60.0, "run_start": 0.0, "run_end": 1000.0}


# -- NAB golden vectors ---------------------------------------------------------------------


def rows(first, last):
    """NAB window over rows first..last (inclusive), one row per second: [first, last + 1)."""
    return [(float(first), float(last + 1))]


def test_nab_detection_at_first_row_of_width_2_window_in_10_rows_scores_exactly_a_tp():
    window = rows(4, 5)  # width 2 among rows 0..9, no probation
    assert nab_raw(window, [4.0]) == STANDARD.tp == 1.0
    assert nab_raw(window, [5.0]) == pytest.approx(scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0))
    assert nab_raw(window, [4.0, 5.0]) == 1.0  # only the earliest detection in a window counts
    assert nab_raw(window, []) == -STANDARD.fn


def test_nab_earlier_detection_scores_higher_than_later():
    scores = [nab_raw(rows(2, 7), [float(i)]) for i in range(2, 8)]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 6
    assert scores[0] == 1.0 and scores[-1] > 0  # even at the right edge it is a hit


def test_nab_false_alarms_are_scored_by_distance_past_the_previous_window():
    window = rows(4, 5)
    assert nab_raw(window, [4.0, 1.0]) == pytest.approx(1.0 - 0.11)  # before the first window
    near = scaled_sigmoid(abs(5 - 6) / (2 - 1)) * 0.11  # y = |r_prev − i| / (W_prev − 1)
    assert nab_raw(window, [4.0, 6.0]) == pytest.approx(1.0 + near)
    assert -0.11 < near < 0
    assert nab_raw(window, [4.0, 9.0]) == pytest.approx(1.0 - 0.11)  # y = 4 > 3: full cost
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)


def test_score_uses_nab_rows_of_nab_step_seconds():
    card = score([ep(10, 11)], alerts(10, 12), max_delay=1.0, run_start=0.0, run_end=20.0)
    assert card.results[0].window == (10.0, 12.0)
    assert card.nab_raw == pytest.approx(1.0 + scaled_sigmoid(1.0) * 0.11)
    coarse = score(
        [ep(10, 11)], alerts(10, 12), max_delay=1.0, run_start=0.0, run_end=20.0, nab_step=2.0
    )
    assert coarse.nab_raw == pytest.approx(1.0 - 0.11)  # a one-row window: the full cost


# -- the whole-run golden vectors -------------------------------------------------------------


def test_perfect_detector_scores_recall_1_precision_1_delay_0_nab_100():
    card = score(EPISODES, alerts(100, 300, 600), **RUN)
    assert (card.recall, card.precision, card.f1) == (1.0, 1.0, 1.0)
    assert card.delay_mean == card.delay_p90 == card.delay_penalised_mean == 0.0
    assert card.nab == pytest.approx(100.0)
    assert card.false_alarms == 0 and card.far == 0.0
    assert card.arl0 is not None and math.isinf(card.arl0[0])


def test_silent_detector_scores_recall_0_and_nab_0():
    card = score(EPISODES, [], **RUN)
    assert card.recall == 0.0 and card.missed_rate == 1.0 and card.missed == 3
    assert card.nab == pytest.approx(0.0)
    assert card.precision is None and card.f1 is None and card.delay_mean is None
    assert card.delay_penalised_mean == pytest.approx((120 + 90 + 160) / 3)  # end(W_k) − s_k


# -- rules ------------------------------------------------------------------------------------


def test_false_alarms_outside_every_window_and_far_over_clean_time():
    card = score(EPISODES, alerts(50, 100, 250, 900), **RUN, rate_period=3600.0)
    assert card.false_alarms == 3 and card.false_alarm_at == (50.0, 250.0, 900.0)
    assert card.clean_time == pytest.approx(1000 - 370)
    assert card.far == pytest.approx(3 / 630 * 3600)
    assert card.precision == pytest.approx(1 / 4) and card.recall == pytest.approx(1 / 3)
    assert card.f1 == pytest.approx(2 * 0.25 * (1 / 3) / (0.25 + 1 / 3))
    assert card.arl0 is not None and card.arl0[0] == pytest.approx(630 / 3)


def test_redundant_alerts_are_neither_hits_nor_false_alarms():
    card = score(EPISODES, alerts(100, 110, 150, 219.9), **RUN)
    assert card.results[0].redundant == 3 and card.redundant == 3
    assert card.detected == 1 and card.false_alarms == 0 and card.precision == 1.0
    assert card.results[0].first_alert == Alert(100.0)


def test_windows_truncate_at_the_next_episode_so_one_alert_is_credited_once():
    eps = [ep(0, 10), ep(12, 20)]  # D = 30: W1 = [0, 12), W2 = [12, 50)
    at_next = score(eps, alerts(12), max_delay=30.0)
    assert [r.detected for r in at_next.results] == [False, True]
    assert at_next.results[1].delay == 0.0
    before = score(eps, alerts(11), max_delay=30.0)
    assert [r.delay for r in before.results] == [11.0, None]
    early = score(eps, alerts(11), max_delay=30.0, early=1.0)  # W2 = [11, 50)
    assert [r.delay for r in early.results] == [None, -1.0]
    assert early.results[0].window == (-1.0, 11.0)


def test_simultaneous_episodes_leave_the_first_an_empty_window():
    card = score([ep(5, 9, fault="a"), ep(5, 9, fault="b")], alerts(5), max_delay=1.0)
    assert [r.window for r in card.results] == [(5.0, 5.0), (5.0, 10.0)]
    assert [r.detected for r in card.results] == [False, True]
    assert card.results[0].delay is None and card.delay_penalised_mean == 0.0


def test_warmup_and_run_end_ignore_alerts_and_clean_time_starts_after_warmup():
    card = score(
        [ep(500, 510)], alerts(50, 150, 505, 1200), max_delay=10.0, warmup=100.0,
        run_start=0.0, run_end=1000.0,
    )  # fmt: skip
    assert card.ignored == 2 and card.false_alarms == 1 and card.detected == 1
    assert card.clean_time == pytest.approx(900 - 20)


def test_label_matching_counts_wrong_labels_as_mismatched_not_false_alarms():
    eps = [ep(100, 110, route="a"), ep(200, 210, route="b")]
    feed = alerts(101, 150, route="a") + alerts(201, route="a") + alerts(205, route="b")
    card = score(eps, feed, max_delay=10.0, match=lambda e, a: a.labels["route"] == e.route)
    assert card.mismatched == 1 and card.false_alarms == 1
    assert [r.delay for r in card.results] == [1.0, 5.0]


def test_delay_statistics_and_penalised_mean():
    eps = [ep(k * 1000, k * 1000 + 50) for k in range(5)]
    card = score(eps, alerts(1, 1002, 2003, 3010), max_delay=100.0)  # the last one is missed
    assert card.delay_mean == pytest.approx(4.0) and card.delay_median == pytest.approx(2.5)
    assert card.delay_p90 == pytest.approx(3 + 0.7 * 7)  # linear interpolation, as numpy
    assert card.delay_penalised_mean == pytest.approx((1 + 2 + 3 + 10 + 150) / 5)


def test_stratified_by_fraction_feature_and_severity():
    eps = [
        ep(0, 10, fraction=0.5, features=("amount", "country")),
        ep(100, 110, fraction=0.01, features=("amount",)),
        ep(200, 210, fraction=0.01, severity="shift=2.0"),
        ep(300, 310, fraction=0.5, type_="delay"),
    ]
    card = score(eps, alerts(1, 302), max_delay=10.0)
    frac = card.by["fraction"]
    assert list(frac) == ["0.01", "0.5"]
    assert (frac["0.01"].recall, frac["0.5"].recall) == (0.0, 1.0)
    assert frac["0.5"].delay_mean == pytest.approx(1.5)
    feat = card.by["feature"]
    assert {k: v.episodes for k, v in feat.items()} == {"amount": 2, "country": 1, "-": 2}
    assert card.by["severity"]["shift=2.0"].detected == 0
    assert card.by["type"]["delay"].recall == 1.0


def test_empty_run_is_undefined_not_zero_and_bad_parameters_raise():
    card = score([], [], max_delay=10.0)
    assert card.recall is None and card.nab is None and card.far is None and card.arl0 is None
    with pytest.raises(ValueError):
        score([], [], max_delay=-1.0)


@given(
    st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 100)), max_size=8),
    st.lists(st.floats(0, 1200), max_size=30),
    st.floats(0, 50),
    st.floats(0, 5),
)
def test_every_alert_is_exactly_one_of_hit_redundant_false_alarm_ignored(spans, times, d, e):
    eps = [ep(s, s + length) for s, length in spans]
    card = score(eps, alerts(*times), max_delay=d, early=e, warmup=10.0)
    assert card.detected + card.redundant + card.false_alarms + card.ignored == len(times)
    windows = [r.window for r in card.results]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(windows))
    assert card.nab is None or card.nab <= 100.0 + 1e-9


# -- ARL0 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "lower", "upper"),
    [(0, 0.0, 3.688879), (1, 0.025318, 5.571643), (5, 1.623486, 11.668332), (100, 81.364, 121.627)],
)
def test_exact_poisson_interval_matches_chi_square_tables(count, lower, upper):
    lo, hi = poisson_interval(count)
    assert lo == pytest.approx(lower, abs=1e-5, rel=1e-5)
    assert hi == pytest.approx(upper, rel=1e-5)


def test_poisson_interval_has_exactly_2_5_percent_in_each_tail():
    def cdf(k, lam):
        return sum(math.exp(i * math.log(lam) - lam - math.lgamma(i + 1)) for i in range(k + 1))

    for count in (1, 3, 20):
        lo, hi = poisson_interval(count)
        assert 1 - cdf(count - 1, lo) == pytest.approx(0.025, rel=1e-9)
        assert cdf(count, hi) == pytest.approx(0.025, rel=1e-9)


def test_arl0_point_and_interval():
    point, lower, upper = arl0(1000.0, 0)
    assert math.isinf(point) and math.isinf(upper) and lower == pytest.approx(1000 / 3.688879)
    point, lower, upper = arl0(1000.0, 5)
    assert point == 200.0
    assert (lower, upper) == pytest.approx((1000 / 11.668332, 1000 / 1.623486), rel=1e-5)


# -- readers ----------------------------------------------------------------------------------


def entry(kind, at_ms, fault="slow", route="r1", type_="delay", experiment="e", **detail):
    return {
        "experiment": experiment, "route": route, "fault": fault, "type": type_, "kind": kind,
        "source": None, "shadow": None, "at": at_ms, "detail": detail,
    }  # fmt: skip


def test_ledger_pairs_starts_and_ends_per_experiment_route_fault():
    drift = {"fields": ["amount", "country"], "features": {"age": {}}, "shift": 2.0}
    ledger = [
        entry("episode_start", 1_000_000, fraction=0.05, delay=0.5, field="amount"),
        entry("injection", 1_500_000),
        entry("episode_end", 1_600_000, fault="ghost"),  # no start: ignored
        entry("episode_start", 1_200_000, fault="d", route="r2", type_="drift", **drift),
        entry("episode_end", 1_300_000, experiment="other"),  # another experiment's fault
        entry("episode_end", 2_000_000),
        entry("episode_start", 3_000_000),  # a recurring schedule: a second episode
        entry("episode_end", 3_500_000),
        entry("injection", 4_000_000),
    ]
    eps = episodes_from_ledger(ledger)
    assert [(e.fault, e.start, e.end) for e in eps] == [
        ("slow", 1000.0, 2000.0), ("d", 1200.0, 4000.0), ("slow", 3000.0, 3500.0),
    ]  # fmt: skip
    slow, drifted = eps[0], eps[1]
    assert (slow.features, slow.fraction, slow.severity) == (("amount",), 0.05, "delay=0.5")
    assert (drifted.features, drifted.severity) == (("amount", "country", "age"), "shift=2.0")
    assert drifted.type == "drift" and drifted.route == "r2" and drifted.fraction is None


def test_ledger_start_left_open_by_a_crash_ends_at_the_last_entry_before_the_restart():
    ledger = [
        entry("episode_start", 1000),
        entry("injection", 5000),
        entry("episode_start", 9000),
        entry("episode_end", 10_000),
    ]
    assert [(e.start, e.end) for e in episodes_from_ledger(ledger)] == [(1.0, 5.0), (9.0, 10.0)]
    with pytest.raises(StreamChaosError, match="entry 0"):
        episodes_from_ledger([entry("episode_start", None)])


def test_alerts_from_jsonl_accept_seconds_or_ms_and_name_the_bad_line():
    lines = ['{"at_ms": 12000, "labels": {"detector": "adwin"}}', "", '{"at": 10.5}\n']
    assert alerts_from_jsonl(lines) == [Alert(10.5), Alert(12.0, {"detector": "adwin"})]
    for bad in ("not json", '{"labels": {}}', '{"at": 1700000000000}', '{"at": 1, "labels": 2}'):
        with pytest.raises(StreamChaosError, match="line 2"):
            alerts_from_jsonl(['{"at": 1}', bad])


def prom(*series, status="success"):
    return {"status": status, "data": {"resultType": "matrix", "result": list(series)}}


def series(times, state="firing", **labels):
    metric = {"__name__": "ALERTS", "alertname": "Drift", "alertstate": state, **labels}
    return {"metric": metric, "values": [[t, "1"] for t in times]}


def test_prometheus_one_alert_per_rising_edge_of_each_firing_series():
    answer = prom(
        series([0, 15, 30, 90, 105, 200], feature="amount"),
        series([45, 60], state="pending"),
        series([1000.5], feature="country"),
    )
    edges = alerts_from_prometheus(answer, step=15.0)
    assert [a.at for a in edges] == [0.0, 90.0, 200.0, 1000.5]
    assert edges[0].labels == {"alertname": "Drift", "alertstate": "firing", "feature": "amount"}
    assert alerts_from_prometheus(answer) == edges  # step inferred from the sample spacing
    assert [a.at for a in alerts_from_prometheus(answer, step=60.0)] == [0.0, 200.0, 1000.5]


def test_prometheus_errors_and_non_range_answers_raise():
    with pytest.raises(StreamChaosError, match="bad_data"):
        alerts_from_prometheus({"status": "error", "error": "bad_data: parse error"})
    with pytest.raises(StreamChaosError, match="matrix"):
        alerts_from_prometheus({"status": "success", "data": {"resultType": "vector"}})
    with pytest.raises(StreamChaosError, match="malformed"):
        alerts_from_prometheus(prom({"metric": {}}))


# -- output -----------------------------------------------------------------------------------


def test_to_dict_is_strict_json_with_inf_as_a_string_and_undefined_as_null():
    perfect = score(EPISODES, alerts(100, 300, 600), **RUN).to_dict()
    text = json.dumps(perfect, allow_nan=False)
    assert perfect["arl0"][0] == "inf" and perfect["nab"] == pytest.approx(100.0)
    assert perfect["by"]["fraction"]["-"]["missed"] == 0
    assert json.loads(text)["results"][0]["episode"]["start"] == 100.0
    silent = score(EPISODES, [], **RUN).to_dict()
    assert silent["precision"] is None and silent["missed_rate"] == 1.0


def test_table_is_plain_text_with_headline_episodes_and_strata():
    text = score(EPISODES, alerts(100, 900), **RUN).table()
    assert "recall 0.333" in text and "false alarms 1" in text and "NAB" in text
    assert text.count("MISSED") == 2 and "fraction" in text
    assert "\x1b" not in text


# -- intervals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "lower", "upper"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombe_1998(k, n, lower, upper):
    """Newcombe, Statistics in Medicine 17 (1998) 857-872, Table I, method 3."""
    low, high = wilson(k, n)
    assert (round(low, 4), round(high, 4)) == (lower, upper)


def test_the_scorecard_gives_recall_and_far_with_their_intervals():
    card = score(EPISODES, alerts(100, 300, 600), **RUN)
    low, high = card.recall_interval
    assert (round(low, 4), high) == (0.4385, 1.0)  # 3 of 3 detected: at least 0.44
    assert card.far_interval == pytest.approx((0.0, 3.6889 * 3600 / 630), rel=1e-4)
    brief = score([], [], max_delay=10, run_start=0.0, run_end=20.0)
    assert brief.far_interval[1] == pytest.approx(664.0, abs=1)  # 20 s say little
    out = json.loads(json.dumps(card.to_dict()))
    assert out["recall_interval"] == [low, high] and out["far_interval"][0] == 0.0
    assert "recall 1.000 (95% 0.439..1.000)" in card.table()
    assert card.by["type"]["drift"].recall_interval == card.recall_interval
