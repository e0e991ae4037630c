"""``make bench`` writes docs/benchmarks.md and the README's summary from the same run."""

import argparse
from pathlib import Path

import pytest

from benchmarks import run as bench

ROOT = Path(__file__).resolve().parents[2]


def fake_rates():
    """Two rounds; the plain loop at 1,000,000 records/s (1 µs a record), every base loop
    and the delay row different from round to round, so a mixed-up column shows; one
    bridge round and the 10 % drift row exactly at their targets, which count as met."""
    rates = {name: [0.5e6, 0.5e6] for name in bench.SCENARIOS}  # the fault rows
    rates.update(
        {
            "plain": [1e6, 1e6],
            "plain, GC tuned like the bridge": [1.3e6, 1.2e6],
            "plain + the bridge's duties, GC tuned": [0.90e6, 0.94e6],
            "bridge": [0.95e6, 0.90e6],
            "bridge, default GC": [0.70e6, 0.74e6],
            "bridge, no lineage header": [1e6, 1e6],
            "bridge + delay 5% (20 ms)": [0.5e6, 0.95e6],
            "bridge + delay 5% (20 ms), ledger file": [0.425e6, 0.425e6],
            "bridge + drift 10% (5 numeric features)": [0.75e6, 0.75e6],
            bench.MINIMAL_HOLD: [0.84e6, 0.92e6],
            bench.MINIMAL_NAN: [0.9e6, 0.9e6],
        }
    )
    return rates


def test_report_writes_the_table_and_the_readme_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.README_BEGIN}\nOLD BLOCK\n{bench.README_END}\noutro\n")
    args = argparse.Namespace(
        records=1000, rounds=2, warmup=1, out=str(tmp_path / "b.md"), readme=str(readme)
    )
    bench.report(args, fake_rates())
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{bench.README_END}\noutro\n")
    assert "OLD BLOCK" not in text
    # ratio to plain (median of per-round ratios), rounds at target, ratio to GC-tuned plain
    assert "| bridge (lineage header on) | 92.5 % | 1 of 2 | 74 % | 95 % |" in text
    assert "| 5 % `delay` | 72.5 % | 1 of 2 | 59 % | 90 % |" in text
    assert "| 10 % `drift` (5 numeric features) | 75.0 % | 2 of 2 | 60 % | 75 % |" in text
    prose = " ".join(text.split("| target |")[1].split("\n\n", 1)[1].split())
    assert prose.startswith(
        "With Python's default garbage-collector thresholds the bridge reached 72 % of the "
        "plain loop. A plain loop given the bridge's setting ran 25 % faster; that loop "
        "adding the lineage header and taking a delivery report per record reached 92 % of "
        "the plain loop, and the bridge 101 % of that loop. Between rounds, the bridge's "
        "ratio went from 90 % to 95 %. "
        # (1/median rate - 1/0.925e6) s a record, over the 5 % or 10 % of records selected
        "Every record a fault selected cost 3–18 µs more than a passed-through one (1.1 µs). "
        "Writing the ledger to a file (which turns a delivery report per record back on) "
        "cost another 30 points at 5 % `delay`. A minimal loop "
        "with the same duties and no engine that holds 1 record in 20 for 20 ms reached 88 % "
        "of the plain loop (1 of 2 rounds at or above the `delay` target); writing NaN into "
        "1 record in 20, 90 %."
    )
    table = (tmp_path / "b.md").read_text()
    assert (
        "| bridge | 925,000 | 92.5% | 90%-95% | 74.0% | 100.7% "
        "| ≥ 95% (#2): not met / not met; vs plain in 1 of 2 rounds |"
    ) in table
    assert (
        "| bridge + drift 10% (5 numeric features) | 750,000 | 75.0% | 75%-75% | 60.1% | 81.6% "
        "| ≥ 75% (#5): met / not met; vs plain in 2 of 2 rounds |"
    ) in table
    # the command that reproduces the run, and the unmeasured warm-up
    assert "--records 1000 --rounds 2 --warmup 1`" in table
    assert "2 rounds after 1 unmeasured" in table


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
