"""`compare`, `scaling` and `frontier` report the response-length difference beside every score
difference (mean `response_tokens`, paired over the same prompts, with its interval); runs from
before lengths were recorded read, their length fields None and their table cells `-`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from analysis_helpers import model_spec, write_run

from eft_eval.analysis import compare_analysis, frontier_analysis, load_run, scaling_analysis
from eft_eval.analysis._render import compare_table, frontier_table, scaling_table
from eft_eval.stats import BootstrapSettings, paired_difference

FAST = BootstrapSettings(n_resamples=2000, seed=0)
SCORES = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
SHORT = [10, 20, 30, 40, 50, 60, 70, 80]
LONG = [30, 25, 60, 41, 90, 62, 100, 256]


def test_compare_reports_the_paired_length_difference(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path / "a", {"helpfulness": SCORES}, lengths=SHORT))
    # B: one prompt unscored (left out of the score difference, so of the length difference too).
    b = load_run(write_run(tmp_path / "b", {"helpfulness": [*SCORES[:-1], "failed"]}, lengths=LONG))
    row = compare_analysis(a, b, settings=FAST)["rows"][0]
    expected = paired_difference(SHORT[:-1], LONG[:-1], FAST).difference
    assert row["n_paired"] == row["n_length_paired"] == 7
    assert row["length_difference"] == pytest.approx(np.mean(np.subtract(LONG[:-1], SHORT[:-1])))
    assert row["length_difference_ci"] == pytest.approx([expected.ci_low, expected.ci_high])
    assert row["mean_tokens_a"] == pytest.approx(np.mean(SHORT[:-1]))
    assert row["mean_tokens_b"] == pytest.approx(np.mean(LONG[:-1]))
    assert f"+{row['length_difference']:.1f} (" in compare_table({"run_a": "a", "run_b": "b", "rows": [row]})


def test_scaling_reports_each_configurations_length_change_from_small_ft(tmp_path: Path) -> None:
    runs = {role: load_run(write_run(tmp_path / role, {"helpfulness": [s + shift for s in SCORES]}, lengths=lengths))
            for role, shift, lengths in (("small_ft", 0, SHORT), ("large_ft", 3, LONG),
                                         ("up", 1, [n + 5 for n in SHORT]))}
    data = scaling_analysis([(None, runs)], settings=FAST)
    rows = {row["config"]: row for row in data["rows"]}
    assert rows["small_ft"]["length_difference"] == 0
    assert rows["up"]["length_difference"] == pytest.approx(5.0)
    assert rows["large_ft"]["length_difference"] == pytest.approx(np.mean(np.subtract(LONG, SHORT)))
    assert rows["large_ft"]["mean_tokens"] == pytest.approx(np.mean(LONG))
    low, high = rows["large_ft"]["length_difference_ci"]
    assert low < rows["large_ft"]["length_difference"] < high
    assert "Δ tokens vs small_ft" in scaling_table(data) and "+5.0" in scaling_table(data)


def test_frontier_reports_each_points_length_change_from_the_first(tmp_path: Path) -> None:
    paths = [write_run(tmp_path / f"a{alpha}", {"helpfulness": [s + alpha for s in SCORES], "harm": SCORES},
                       spec=model_spec(alpha=alpha), lengths=lengths)
             for alpha, lengths in ((0.0, SHORT), (1.0, LONG))]
    data = frontier_analysis([load_run(p) for p in paths], "helpfulness", "harm", settings=FAST)
    first, last = data["points"]
    assert first["length_difference"] == 0 and first["mean_tokens"] == pytest.approx(np.mean(SHORT))
    assert last["length_difference"] == pytest.approx(np.mean(np.subtract(LONG, SHORT)))
    assert last["length_difference_ci"][0] > 0
    assert f"+{last['length_difference']:.1f}" in frontier_table(data)


def test_runs_without_recorded_lengths_still_compare(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path / "a", {"helpfulness": SCORES}))
    b = load_run(write_run(tmp_path / "b", {"helpfulness": SCORES}, lengths=LONG))
    data = compare_analysis(a, b, settings=FAST)
    row = data["rows"][0]
    assert row["length_difference"] is None and row["mean_tokens_a"] is None and row["n_length_paired"] == 0
    assert compare_table(data).splitlines()[-1].rstrip().endswith("-")
