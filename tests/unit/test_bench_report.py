"""``make bench`` writes docs/benchmarks.md and the README's summary from the same run."""

import argparse
from pathlib import Path

import pytest

from benchmarks import run as bench

ROOT = Path(__file__).resolve().parents[2]


def fake_rates():
    """Two rounds; the plain loop at 1,000,000 records/s (1 µs a record)."""
    rates = {name: [1e6, 1e6] for name in bench.SCENARIOS}
    rates["bridge"] = [0.96e6, 0.90e6]
    for name, target in bench.TARGETS.items():  # a fault: 1 µs more a record
        if target.fraction:
            rates[name] = [0.5e6, 0.5e6]
    rates["bridge + delay 5% (20 ms), ledger file"] = [0.45e6, 0.45e6]
    rates[bench.FLOOR_HOLD] = [0.84e6, 0.92e6]
    rates[bench.FLOOR_NAN] = [0.9e6, 0.9e6]
    return rates


def test_report_writes_the_table_and_the_readme_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.README_BEGIN}\nOLD BLOCK\n{bench.README_END}\noutro\n")
    args = argparse.Namespace(
        records=1000, rounds=2, out=str(tmp_path / "b.md"), readme=str(readme)
    )
    bench.report(args, fake_rates())
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{bench.README_END}\noutro\n")
    assert "OLD BLOCK" not in text
    assert "| bridge (lineage header on) | 93.0 % | 1 of 2 | 93 % | 95 % |" in text
    assert "| 5 % `delay` | 50.0 % | 0 of 2 | 50 % | 90 % |" in text
    assert "went from 90 % to 96 %" in text
    # (1/0.5e6 - 1/0.93e6) s a record, over the 10 % or 5 % of records selected
    assert "cost 9–18 µs more than a passed-through one (1.1 µs)" in " ".join(text.split())
    assert "another 5 points" in text
    flat = " ".join(text.split())
    assert "reached 88 % of the plain loop (1 of 2 rounds at or above the `delay` target)" in flat
    assert "writing NaN into 1 record in 20, 90 %." in flat
    table = (tmp_path / "b.md").read_text()
    assert "| bridge | 930,000 | 93.0% | 90%-96% |" in table


def test_a_readme_without_the_block_is_refused():
    with pytest.raises(ValueError, match="begin"):
        bench.with_summary("no markers here", "x")


def test_the_readme_has_the_block_with_every_target():
    text = (ROOT / "README.md").read_text()
    block = text[text.index(bench.README_BEGIN) : text.index(bench.README_END)]
    for target in bench.TARGETS.values():
        assert f"| {target.row} |" in block
