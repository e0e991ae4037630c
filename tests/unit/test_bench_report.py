"""``make bench`` writes docs/benchmarks.md and the README's summary from the same run."""

import argparse
import io
import json
from pathlib import Path

import fastavro
import pytest

from benchmarks import latency
from benchmarks import run as bench
from streamchaos.codec.wire import split

ROOT = Path(__file__).resolve().parents[2]
AVRO_PLAIN, AVRO_PLAIN_GC = bench.PLAIN[bench.AVRO], bench.PLAIN_GC[bench.AVRO]
JSON_PLAIN, JSON_PLAIN_GC = bench.PLAIN[bench.JSON], bench.PLAIN_GC[bench.JSON]
DELAY = "bridge + delay 5% (20 ms)"
DRIFT10 = "bridge + drift 10% (5 numeric features)"
JSON_CORRUPT = "bridge + corrupt 5% (nan, 1 field, JSON)"


def fake_rates():
    """Two rounds. Avro: the faster plain loop is the default-GC one in round 1 and the
    GC-tuned one in round 2, 1,000,000 records/s (1 µs a record) both times, so a baseline
    taken from either loop alone, or from their medians, shows. JSON: the default-GC loop
    is the faster in both rounds (500,000/s). The passthrough bridge and the 10 % drift
    row reach their targets exactly in one round and in both: that counts as met."""
    rates = {name: [0.5e6, 0.5e6] for name in bench.SCENARIOS}
    rates.update(
        {
            AVRO_PLAIN: [1e6, 0.8e6],
            AVRO_PLAIN_GC: [0.8e6, 1e6],
            JSON_PLAIN: [0.5e6, 0.5e6],
            JSON_PLAIN_GC: [0.4e6, 0.4e6],
            "bridge": [1e6, 1e6],
            bench.LINEAGE: [0.95e6, 0.9e6],
            DELAY: [0.5e6, 0.95e6],
            DRIFT10: [0.8e6, 0.8e6],
            "bridge, JSON": [0.4e6, 0.4e6],
            JSON_CORRUPT: [0.2e6, 0.25e6],
        }
    )
    return rates


def test_each_round_is_compared_with_the_faster_plain_loop_of_its_source():
    base = bench.faster_plain(fake_rates())
    assert base == {bench.AVRO: [1e6, 1e6], bench.JSON: [0.5e6, 0.5e6]}
    paired = bench.per_round(fake_rates())
    assert paired[bench.LINEAGE] == [0.95, 0.9]
    assert paired[JSON_CORRUPT] == [0.4, 0.5]
    assert paired[JSON_PLAIN_GC] == [0.8, 0.8]


def run_report(tmp_path, delays=()):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.README_BEGIN}\nOLD BLOCK\n{bench.README_END}\noutro\n")
    args = argparse.Namespace(
        records=1000, rounds=2, warmup=1, out=str(tmp_path / "b.md"), readme=str(readme)
    )
    bench.report(args, fake_rates(), list(delays))
    return readme.read_text(), (tmp_path / "b.md").read_text()


def test_the_visibility_latency_of_each_mode_is_reported_beside_its_commit_interval(tmp_path):
    delays = [
        latency.Latency("at-least-once", 1.0, 20_000, 60.2, 210.0, 290.0),
        latency.Latency("exactly-once", 1.0, 20_000, 530.0, 1027.4, 1064.0),
    ]
    text, table = run_report(tmp_path, delays)
    assert "| exactly-once | 1 s | 20,000 | 530 ms | 1027 ms | 1064 ms |" in table
    said = " ".join(text.split())
    assert "commit interval 1 s): at-least-once p50 60 ms, p99 210 ms; exactly-once p50" in said
    text, table = run_report(tmp_path)  # --no-latency
    assert "Visibility" not in text + table


def test_the_readme_block_has_each_target_row(tmp_path):
    text, _ = run_report(tmp_path)
    assert text.startswith("intro\n") and text.endswith(f"{bench.README_END}\noutro\n")
    assert "OLD BLOCK" not in text
    assert "1,000 records a source, 2 rounds after 1 warm-up" in " ".join(text.split())
    # the median of the per-round ratios, rounds at or above the target, the target
    assert "| passthrough, lineage on (ledger lines) | 92.5 % | 1 of 2 | 95 % (#16) |" in text
    assert "| 5 % `delay` 20 ms | 72.5 % | 1 of 2 | 90 % (#16) |" in text
    assert "| 10 % `drift` (5 numeric features) | 80.0 % | 2 of 2 | 80 % (#16) |" in text
    assert "| 5 % `corrupt` nan, JSON (one field) | 45.0 % | 0 of 2 | 85 % (#16) |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and " (#1" in line]
    assert len(rows) == len(bench.TARGETS) == 11
    assert "| passthrough, exactly-once | 50.0 % | 0 of 2 | 85 % (#18) |" in text


def test_the_docs_table_has_every_loop_with_its_verdict(tmp_path):
    _, table = run_report(tmp_path)
    verdict = "≥ 95 % (#16): not met (1 of 2)"
    assert f"| {bench.LINEAGE} | Avro | 925,000 | 92.5 % | 90 %–95 % | {verdict} |" in table
    drift = f"| {DRIFT10} | Avro | 800,000 | 80.0 % | 80 %–80 % | ≥ 80 % (#16): met (2 of 2) |"
    assert drift in table
    assert f"| {JSON_PLAIN_GC} | JSON | 400,000 | 80.0 % | 80 %–80 % |  |" in table
    assert all(f"| {name} |" in table for name in bench.SCENARIOS)
    # which plain loop was the baseline, how often
    assert "faster in 1 of 2 (Avro) and 0 of 2 (JSON) rounds" in " ".join(table.split())
    # the command that reproduces the run, and the unmeasured warm-up
    assert "--records 1000 --rounds 2 --warmup 1`" in table
    assert "2 rounds after 1 unmeasured" in table


def test_the_cost_table_gives_what_a_selected_record_adds(tmp_path):
    """µs a record from the median rates; a fault row's extra over its source's passthrough
    bridge, divided by the share of records its faults select."""
    _, table = run_report(tmp_path)
    costs = table.split("## Where the time goes")[1]
    assert "| the faster plain loop | Avro | | 1.00 | | | |" in costs
    assert "| bridge | Avro |  | 1.00 | +0.00 |  |  |" in costs
    assert f"| {bench.LINEAGE} | Avro |  | 1.08 | +0.08 | +0.08 |  |" in costs
    # (1/725,000 - 1/1,000,000) s over 5 % of the records
    assert f"| {DELAY} | Avro | 5.0 % | 1.38 | +0.38 | +0.38 | +7.6 |" in costs
    # three faults at 10 % each: 27.1 % of the records meet at least one
    assert f"| {bench.THREE} | Avro | 27.1 % | 2.00 | +1.00 | +1.00 | +3.7 |" in costs
    assert "| the faster plain loop | JSON | | 2.00 | | | |" in costs
    assert "| bridge, JSON | JSON |  | 2.50 | +0.50 |  |  |" in costs
    # compared with the JSON passthrough, not the Avro one
    assert f"| {JSON_CORRUPT} | JSON | 5.0 % | 4.44 | +2.44 | +1.94 | +38.9 |" in costs


def test_every_target_is_a_loop_of_the_bench():
    assert set(bench.TARGETS) <= set(bench.SCENARIOS)
    assert {t.issue for t in bench.TARGETS.values()} == {16, 18}


def test_the_sources_hold_what_the_docs_say():
    """Both topics carry the same features, in the value sizes the report states."""
    avro = list(bench.avro_records("a", 3000, schema_id=1))
    plain = list(bench.json_records("j", 3000))
    parsed = fastavro.parse_schema(bench.SCHEMA)
    for i in (0, 1234, 2999):
        want = bench.features(i)
        read = fastavro.schemaless_reader(io.BytesIO(split(avro[i]["value"])[1]), parsed)
        assert read == want == json.loads(plain[i]["value"])
        assert avro[i]["key"] == plain[i]["key"]
        assert avro[i]["partition"] == plain[i]["partition"] == i % bench.PARTITIONS
    assert all(len(r["headers"]) == 1 for r in avro) and all("headers" not in r for r in plain)
    for fmt, records in ((bench.AVRO, avro), (bench.JSON, plain)):
        mean = sum(len(r["value"]) for r in records) / len(records)
        assert abs(mean / bench.VALUE_BYTES[fmt] - 1) < 0.05, (fmt, mean)


def test_a_readme_without_the_block_is_refused():
    with pytest.raises(ValueError, match="begin"):
        bench.with_summary("no markers here", "x")


def test_the_readme_has_the_block_with_every_target():
    text = (ROOT / "README.md").read_text()
    block = text[text.index(bench.README_BEGIN) : text.index(bench.README_END)]
    for target in bench.TARGETS.values():
        assert f"| {target.row} |" in block


def test_the_summary_never_breaks_a_line_between_a_number_and_its_percent():
    text = "x " * 40 + "reached 87 % of it and 12 % of that, " * 3
    wrapped = bench._wrap(text)
    assert all(len(line) <= 90 for line in wrapped.splitlines())
    assert "\n%" not in wrapped and " ".join(wrapped.split()) == " ".join(text.split())
