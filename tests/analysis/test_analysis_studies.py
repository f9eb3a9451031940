"""The study analyses on hand-made run folders whose numbers are known.

Run folders are written in `eft-eval run`'s layout (tests/analysis_helpers.py): the analyses read
only samples.jsonl, run.json and results.json, so no model and no judge is needed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from analysis_helpers import model_spec, write_run
from scipy import stats

from eft_eval.analysis import (
    agreement_analysis,
    analyze_study,
    compare_analysis,
    frontier_analysis,
    load_run,
    scaling_analysis,
    top_p_analysis,
)
from eft_eval.stats import BootstrapSettings, normalized_improvement, pareto_set

FAST = BootstrapSettings(n_resamples=2000, seed=0)


def _rows(data: dict, judge: str) -> dict:
    return {row["config"]: row for row in data["rows"] if row["judge"] == judge and "group" not in row}


def test_normalized_improvement_is_exact_and_excluded_judgments_are_counted(tmp_path: Path) -> None:
    # Prompt-wise scores: small 10 + d, large 20 + d, up 17.5 + d, down 12 + d (d sums to 0).
    d = [-3.0, -1.0, 0.0, 1.0, 3.0]
    small = write_run(tmp_path / "small", {"helpfulness": [10 + x for x in d]})
    large = write_run(tmp_path / "large", {"helpfulness": [20 + x for x in d]})
    up = write_run(tmp_path / "up", {"helpfulness": [17.5 + x for x in d]})
    # down: prompt 4 failed, prompt 1 abstained, and one extra prompt nobody else has.
    down = write_run(tmp_path / "down", {"helpfulness": [12 - 3.0, "abstained", 12.0, 13.0, "failed", 50.0]},
                     doc_ids=[0, 1, 2, 3, 4, 99])
    runs = {"small-ft": load_run(small), "large-ft": load_run(large), "up": load_run(up), "down": load_run(down)}
    data = scaling_analysis([(None, runs)], settings=FAST)
    rows = _rows(data, "helpfulness")
    assert (rows["small_ft"]["normalized_improvement"], rows["large_ft"]["normalized_improvement"]) == (0.0, 1.0)
    # Paired prompts: 0, 2, 3 (scored in every run). Sums there: small 28, large 58, up 50.5, down 34.
    assert data["n_paired"] == {"helpfulness": 3}
    assert rows["up"]["normalized_improvement"] == pytest.approx((50.5 - 28) / (58 - 28))
    assert rows["down"]["normalized_improvement"] == pytest.approx((34 - 28) / (58 - 28))
    # Each configuration's own mean: every prompt it scored; what it did not score is counted.
    assert rows["down"]["mean"] == pytest.approx((9 + 12 + 13 + 50) / 4) and rows["down"]["n"] == 4
    assert (rows["down"]["n_abstained"], rows["down"]["n_failed"], rows["down"]["n_missing"]) == (1, 1, 0)
    assert (rows["up"]["mean"] == pytest.approx(17.5)
            and rows["up"]["stderr"] == pytest.approx(np.std(d, ddof=1) / math.sqrt(5)))
    assert (rows["up"]["normalized_improvement_ci"][0] <= rows["up"]["normalized_improvement"]
            <= rows["up"]["normalized_improvement_ci"][1])


def _correlated(n: int = 200, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 10, n)  # shared by every run: what pairing removes
    return (difficulty + rng.normal(0, 2, n), difficulty + 10 + rng.normal(0, 2, n),
            difficulty + 7 + rng.normal(0, 2, n))


def test_paired_bootstrap_se_matches_independent_computations_and_beats_unpaired() -> None:
    small, large, up = _correlated()
    result = normalized_improvement(small, large, {"up": up}, BootstrapSettings(n_resamples=9999, seed=0))
    estimate = result.estimates["up"]
    assert estimate.value == pytest.approx((up.mean() - small.mean()) / (large.mean() - small.mean()))
    assert estimate.method == "paired-bootstrap-percentile" and estimate.n == 200

    # Independent 1: scipy's paired bootstrap of the same ratio (another generator, another seed).
    def ratio(s: np.ndarray, lg: np.ndarray, u: np.ndarray, axis: int = -1) -> np.ndarray:
        return (u.mean(axis=axis) - s.mean(axis=axis)) / (lg.mean(axis=axis) - s.mean(axis=axis))
    scipy_se = stats.bootstrap((small, large, up), ratio, paired=True, vectorized=True, n_resamples=9999,
                               method="percentile", rng=np.random.default_rng(123)).standard_error
    assert estimate.standard_error == pytest.approx(scipy_se, rel=0.08)
    # Independent 2: the delta method for a ratio of paired mean differences.
    d1, d2 = up - small, large - small
    z = (d1 - estimate.value * d2) / d2.mean()
    assert estimate.standard_error == pytest.approx(z.std(ddof=1) / math.sqrt(len(z)), rel=0.08)

    unpaired = normalized_improvement(small, large, {"up": up},
                                      BootstrapSettings(n_resamples=9999, seed=0), paired=False)
    assert unpaired.estimates["up"].standard_error > 3 * estimate.standard_error


def test_zero_denominator_and_denominator_within_noise_are_reported(tmp_path: Path) -> None:
    same = [1.0, 2.0, 3.0, 4.0]
    runs = {"small-ft": load_run(write_run(tmp_path / "s", {"factuality": same})),
            "large-ft": load_run(write_run(tmp_path / "l", {"factuality": same[::-1]})),  # same mean
            "up": load_run(write_run(tmp_path / "u", {"factuality": [2.0, 2.0, 3.0, 3.0]}))}
    rows = _rows(scaling_analysis([(None, runs)], settings=FAST), "factuality")
    assert rows["up"]["normalized_improvement"] is None and rows["up"]["normalized_improvement_stderr"] is None
    assert rows["small_ft"]["normalized_improvement"] is None and "no normalized improvement" in rows["up"]["note"]
    assert rows["up"]["denominator"]["value"] == 0

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 5, 40)
    noisy = {"small-ft": load_run(write_run(tmp_path / "s2", {"factuality": list(10 + noise)})),
             "large-ft": load_run(write_run(tmp_path / "l2", {"factuality": list(10.2 + rng.normal(0, 5, 40))})),
             "up": load_run(write_run(tmp_path / "u2", {"factuality": list(10 + rng.normal(0, 5, 40))}))}
    row = _rows(scaling_analysis([(None, noisy)], settings=FAST), "factuality")["up"]
    assert row["normalized_improvement"] is not None and "within its own noise" in row["note"]
    assert row["denominator"]["ci_low"] <= 0 <= row["denominator"]["ci_high"]


def test_pareto_set_with_ties_dominated_points_and_mixed_directions() -> None:
    # x = helpfulness (higher is better), y = harm (lower is better).
    points = [(50, 10), (60, 20), (50, 10), (40, 15), (60, 25), (70, 40), (55, 10)]
    assert pareto_set(points, True, False) == [False, True, False, False, False, True, True]
    # (50, 10) twice is dominated by (55, 10); without it the tied pair stays on the frontier together.
    assert pareto_set(points[:6], True, False) == [True, True, True, False, False, True]
    # Other directions, other frontiers: both higher is better, then both lower (the tie survives together).
    assert pareto_set(points, True, True) == [False, False, False, False, False, True, False]
    assert pareto_set(points, False, False) == [True, False, True, True, False, False, False]
    assert pareto_set([], True, True) == []


def test_frontier_points_probability_and_exclusions(tmp_path: Path) -> None:
    n = 30
    rng = np.random.default_rng(2)
    base = rng.normal(50, 10, n)
    paths, scored = [], {}
    for alpha, (help_shift, harm_shift) in zip((0.0, 0.5, 1.0), ((0, 0), (10, 5), (9, 20))):
        harm = list(np.clip(base / 5 + harm_shift + rng.normal(0, 1, n), 0, 100))
        helpful: list = list(base + help_shift + rng.normal(0, 1, n))
        if alpha == 0.5:
            helpful[0], helpful[1] = "failed", "abstained"
        scored[alpha] = [v for v in helpful if not isinstance(v, str)]
        paths.append(write_run(tmp_path / f"a{alpha}", {"helpfulness": helpful, "harmlessness": harm},
                               spec=model_spec(alpha=alpha, base="llama-7b")))
    data = frontier_analysis([load_run(p) for p in paths], "helpfulness", "harm", settings=FAST)
    points = {p["alpha"]: p for p in data["points"]}
    assert data["x_higher_is_better"] is True and data["y_higher_is_better"] is False
    assert points[0.5]["label"] == "alpha=0.5" and points[0.5]["base"] == "llama-7b"
    assert points[0.5]["n_x"] == n - 2 and points[0.5]["x_excluded"] == {"n_abstained": 1,
                                                                         "n_failed": 1, "n_missing": 0}
    assert data["n_paired"] == n - 2
    # alpha=1 is less helpful and more harmful than alpha=0.5: dominated, almost never on the frontier.
    assert (points[0.0]["pareto"], points[0.5]["pareto"], points[1.0]["pareto"]) == (True, True, False)
    assert points[1.0]["pareto_probability"] < 0.05 and points[0.5]["pareto_probability"] > 0.95
    assert points[0.5]["x_mean"] == pytest.approx(np.mean(scored[0.5])) and points[0.5]["x_stderr"] == pytest.approx(
        np.std(scored[0.5], ddof=1) / math.sqrt(n - 2))


def test_judge_versus_judge_agreement_equals_a_hand_computation(tmp_path: Path) -> None:
    a_scores = [0, 2, 1, 0, 3, 0, 1, "failed", 0, 2]
    b_scores = [0, 1, 0, 0, 2, 1, 1, 0, 0, 4]
    responses = [f"response {i}" + "!" * i for i in range(10)]
    other = list(responses)
    other[9] = "a different response"  # excluded: not the same response
    run_a = write_run(tmp_path / "local", {"factuality": a_scores}, responses=responses)
    run_b = write_run(tmp_path / "gpt4", {"factuality": b_scores}, responses=other)
    data = agreement_analysis(load_run(run_a), load_run(run_b), "factuality", settings=FAST)
    # Kept prompts 0-6 and 8: A labels F T T F T F T F, B labels F T F F T T T F.
    a = [False, True, True, False, True, False, True, False]
    b = [False, True, False, False, True, True, True, False]
    assert (data["n_paired"] == 8 and data["excluded"]["different_response"] == 1
            and data["excluded"]["a"]["n_failed"] == 1)
    assert data["agreement"]["value"] == pytest.approx(6 / 8)
    po, pa, pb = 6 / 8, sum(a) / 8, sum(b) / 8
    pe = pa * pb + (1 - pa) * (1 - pb)
    assert data["kappa"]["value"] == pytest.approx((po - pe) / (1 - pe))
    kept = [0, 1, 2, 3, 4, 5, 6, 8]
    rho = stats.spearmanr([a_scores[i] for i in kept], [b_scores[i] for i in kept]).statistic
    assert data["spearman"]["value"] == pytest.approx(rho)
    assert data["confusion"]["matrix"] == [[3, 1], [1, 3]]
    # Baselines: B's most common label is "no error" (4 of 8, a tie goes to "error": 4/8 >= 0.5).
    assert data["baselines"]["constant_label"]["agreement"]["value"] == pytest.approx(4 / 8)
    lengths = [len(other[i]) for i in kept]
    rho_length = stats.spearmanr(lengths, [b_scores[i] for i in kept]).statistic
    assert data["baselines"]["longer_response"]["spearman"]["value"] == pytest.approx(rho_length)
    assert data["agreement"]["standard_error"] > 0


def test_compare_gives_the_paired_difference_and_scipy_tests(tmp_path: Path) -> None:
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    b = [2.0, 2.5, 3.0, 6.0, 5.5, 9.0, 7.5, 8.0]
    data = compare_analysis(load_run(write_run(tmp_path / "a", {"helpfulness": a})),
                            load_run(write_run(tmp_path / "b", {"helpfulness": b})), settings=FAST)
    row = data["rows"][0]
    diffs = np.subtract(b, a)
    assert row["difference"] == pytest.approx(diffs.mean()) and row["n_paired"] == 8
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(diffs[diffs != 0]).pvalue)
    assert row["sign_test_p"] == pytest.approx(stats.binomtest(6, 6).pvalue)
    assert (row["n_b_higher"], row["n_b_lower"], row["n_tied"]) == (6, 0, 2)
    assert row["better"] == "b" and row["difference_ci"][0] > 0


def test_top_p_rows_read_top_p_weights_and_accept_a_renamed_judge(tmp_path: Path) -> None:
    paths = [write_run(tmp_path / f"tp{value}",
                       {"factuality": [1.0, 2.0, 0.0, "abstained"], "harmlessness": [5.0, 7.0, 9.0, 11.0]},
                       spec=model_spec(top_p_weights=value)) for value in (None, 0.9)]
    data = top_p_analysis([load_run(p) for p in paths], ["factuality", "harm"])
    rows = {(r["top_p_weights"], r["judge"]): r for r in data["rows"]}
    assert rows[(None, "factuality")]["mean"] == pytest.approx(1.0) and rows[(None, "factuality")]["n"] == 3
    assert rows[(0.9, "factuality")]["n_abstained"] == 1
    assert rows[(0.9, "harm")]["mean"] == pytest.approx(8.0) and rows[(0.9, "harm")]["higher_is_better"] is False


def test_analyze_study_entry_point_writes_every_artefact(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    groups = []
    for task, gain in (("hh", 0.8), ("eli5", 0.6)):
        shared = rng.normal(50, 10, 20)
        runs = {role: write_run(tmp_path / task / role,
                                {"helpfulness": list(shared + shift + rng.normal(0, 1, 20))}, task=task)
                for role, shift in (("small-ft", 0), ("large-ft", 10), ("up", 10 * gain), ("down", 2))}
        groups.append({"name": task, "runs": runs})
    result = analyze_study("scaling", {}, {"groups": groups, "n_resamples": 500}, tmp_path / "out")
    files = {Path(f).name for f in result["files"]}
    assert files == {"scaling.json", "scaling.csv", "scaling.png", "scaling.svg"}
    written = json.loads((tmp_path / "out" / "scaling.json").read_text())
    aggregate = {r["config"]: r for r in written["rows"] if r.get("group") == "aggregate"}
    per_group = [r["normalized_improvement"] for r in written["rows"] if r["config"] == "up"
                 and r.get("group") != "aggregate"]
    assert aggregate["up"]["normalized_improvement"] == pytest.approx(np.mean(per_group))
    assert (aggregate["up"]["normalized_improvement_stderr"] > 0
            and set(written["n_paired"]) == {"hh/helpfulness", "eli5/helpfulness"})
    assert ("helpfulness" in result["table"]
            and (tmp_path / "out" / "scaling.csv").read_text().startswith("judge,config"))

    points = {f"p{i}": write_run(tmp_path / f"f{i}",
                                 {"helpfulness": [1.0 + i, 2.0 + i, 3.0], "harm": [3.0, 1.0 + i, 2.0]})
              for i in range(3)}
    frontier = analyze_study("frontier", points, {"x": "helpfulness", "y": "harm", "n_resamples": 200,
                                                  "points": {"p1": {"alpha": 0.5, "base": "70B"}}}, tmp_path / "out")
    labels = {p["label"]: p for p in frontier["data"]["points"]}
    # The caller's labels are kept; alpha and base come from `points`, else from run.json.
    assert set(labels) == {"p0", "p1", "p2"} and (labels["p1"]["alpha"], labels["p1"]["base"]) == (0.5, "70B")
    assert labels["p0"]["base"] == "base-7b"
    assert (tmp_path / "out" / "frontier.svg").stat().st_size > 0
    top_p = analyze_study("top_p", {"none": points["p0"], "0.9": points["p1"]},
                          {"top_p": {"0.9": 0.9}}, tmp_path / "out")
    assert [r["top_p_weights"] for r in top_p["data"]["rows"]] == [None, None, 0.9, 0.9]
    with pytest.raises(Exception, match="unknown study analysis 'pareto'"):
        analyze_study("pareto", {}, {}, tmp_path / "out")


def test_a_judge_of_unknown_direction_still_gets_ratios_but_no_frontier(tmp_path: Path) -> None:
    runs = {}
    for role, shift in (("small-ft", 0.0), ("large-ft", 4.0), ("up", 1.0)):
        folder = write_run(tmp_path / role, {"my_judge": [1 + shift, 2 + shift, 4 + shift]})
        (folder / "results.json").unlink()  # a bare samples file: no direction recorded
        runs[role] = load_run(folder / "samples.jsonl")
    row = _rows(scaling_analysis([(None, runs)], settings=FAST), "my_judge")["up"]
    assert row["normalized_improvement"] == pytest.approx(0.25) and row["higher_is_better"] is None
    with pytest.raises(Exception, match="the direction of judge 'my_judge' is unknown.*--include-path"):
        frontier_analysis(list(runs.values()), "my_judge", "my_judge", settings=FAST)
