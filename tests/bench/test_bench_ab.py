"""bench.ab's summary: medians per side and the median of per-round ratios (what a before/after note quotes)."""

from __future__ import annotations

from bench.ab import summarise


def test_the_ratio_is_the_median_of_per_round_ratios_not_the_ratio_of_medians() -> None:
    figures = {"heart": {"base": [100.0, 200.0, 300.0], "head": [110.0, 180.0, 330.0]}}
    table = summarise(figures)
    assert table[0].startswith("| scenario |")
    (row,) = table[2:]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == "heart"
    assert cells[1] == "200" and cells[2] == "180"  # each side's median
    assert cells[3] == "1.100"  # ratios 1.1, 0.9, 1.1 → median 1.1 (the ratio of medians would be 0.9)
    assert cells[4] == "1.100, 0.900, 1.100"


def test_rounds_with_a_zero_base_are_left_out_of_the_ratios() -> None:
    (row,) = summarise({"x": {"base": [0.0, 10.0], "head": [5.0, 12.0]}})[2:]
    assert row.split("|")[4].strip() == "1.200"
