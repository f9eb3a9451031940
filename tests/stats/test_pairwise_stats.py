"""Pairwise statistics against simulated judges with known rules, and against independent fits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import optimize, special

from eft_eval.stats import (
    COMBINE_RULES,
    Estimate,
    bradley_terry,
    combine_orders,
    length_controlled_win_rate,
    position_inconsistency,
    win_rate,
)
from eft_eval.stats._pairwise import ELO_ANCHOR, ELO_SCALE, fit_soft_logistic, length_feature

FAST = {"n_resamples": 999}
ESTIMATE_KEYS = {"value", "standard_error", "ci_low", "ci_high", "n", "confidence_level", "undefined_resamples",
                 "method"}


# --- combining both orders ----------------------------------------------------------------------


@pytest.mark.parametrize("first,swapped,rule,expected", [
    (1.0, 1.0, "tie", 1.0), (0.0, 0.0, "tie", 0.0), (0.5, 0.5, "tie", 0.5),
    (1.0, 0.0, "tie", 0.5), (1.0, 0.5, "tie", 0.5), (1.0, 0.75, "tie", 0.5),
    (1.0, 1.0, "mean", 1.0), (1.0, 0.0, "mean", 0.5), (1.0, 0.5, "mean", 0.75), (0.25, 0.0, "mean", 0.125),
    (1.0, 0.75, "side", 0.875), (0.0, 0.25, "side", 0.125), (1.0, 0.5, "side", 0.5), (0.75, 0.25, "side", 0.5),
    (0.5, 0.5, "side", 0.5),
])
def test_combine_orders_rules(first: float, swapped: float, rule: str, expected: float) -> None:
    assert combine_orders(first, swapped, rule) == pytest.approx(expected)


def test_combine_orders_rejects_an_unknown_rule_and_bad_outcomes_by_name() -> None:
    assert "tie" in COMBINE_RULES and combine_orders(1.0, 0.0) == 0.5  # default rule: a tie
    with pytest.raises(ValueError, match="'majority'"):
        combine_orders(1.0, 0.0, "majority")
    with pytest.raises(ValueError, match=r"swapped = 1\.5"):
        combine_orders(1.0, 1.5)
    with pytest.raises(ValueError, match=r"outcomes\[1\] = 2\.0"):
        win_rate([1.0, 2.0])


# --- position inconsistency ---------------------------------------------------------------------


def _position_biased_judge(rng: np.random.Generator, n: int, flip: float, p_win: float) -> tuple[np.ndarray, ...]:
    """A judge that, in each order independently, picks position A with probability `flip` and
    otherwise gives the true verdict. Then a pair's verdicts differ with probability `flip`
    exactly: if the run truly wins, only the swapped order (run in B) can go wrong, by picking
    A; if it truly loses, only the first one can."""
    truth = (rng.random(n) < p_win).astype(float)
    first = np.where(rng.random(n) < flip, 1.0, truth)  # run in A: picking A is a run win
    swapped = np.where(rng.random(n) < flip, 0.0, truth)  # run in B: picking A is a run loss
    return truth, first, swapped


@pytest.mark.parametrize("flip", [0.1, 0.3])
def test_measured_position_inconsistency_matches_the_simulated_flip_probability(flip: float) -> None:
    _, first, swapped = _position_biased_judge(np.random.default_rng(7), 3000, flip, 0.6)
    for method in ("bootstrap", "exact"):
        estimate = position_inconsistency(first, swapped, method=method, **FAST)
        assert abs(estimate.value - flip) < 3 * estimate.standard_error, (method, estimate)
        assert estimate.ci_low < flip < estimate.ci_high
        assert estimate.n == 3000
    assert position_inconsistency(first, swapped, method="exact").method == "binomial-exact"
    assert position_inconsistency(first, swapped, **FAST).method == "bootstrap-percentile"


def test_position_inconsistency_exact_and_bootstrap_agree_and_graded_by_side() -> None:
    first = [1.0, 1.0, 0.75, 0.0, 0.5, 0.25, 1.0, 0.0]
    swapped = [1.0, 0.75, 0.75, 1.0, 0.5, 0.5, 0.0, 0.0]
    strict = position_inconsistency(first, swapped, method="exact")
    assert strict.value == pytest.approx(4 / 8)  # 1 vs 0.75, 0 vs 1, 0.25 vs 0.5, 1 vs 0
    assert strict.standard_error == pytest.approx(math.sqrt(0.5 * 0.5 / 8))
    assert position_inconsistency(first, swapped, by_side=True, method="exact").value == pytest.approx(3 / 8)
    boot = position_inconsistency(first * 50, swapped * 50, seed=2)
    exact = position_inconsistency(first * 50, swapped * 50, method="exact")
    assert boot.standard_error == pytest.approx(exact.standard_error, rel=0.05)
    with pytest.raises(ValueError, match="differ in length"):
        position_inconsistency([1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="'jackknife'"):
        position_inconsistency([1.0], [1.0], method="jackknife")


# --- win rate -----------------------------------------------------------------------------------


def test_win_rate_interval_covers_the_true_rate_about_as_often_as_its_level_says() -> None:
    # Loss, tie, win with these probabilities: the true win rate (ties half) is 0.45 + 0.2 / 2.
    probabilities, true_rate = [0.35, 0.2, 0.45], 0.55
    rng = np.random.default_rng(11)
    simulations, covered = 200, 0
    for simulation in range(simulations):
        outcomes = rng.choice([0.0, 0.5, 1.0], size=80, p=probabilities)
        estimate = win_rate(outcomes, n_resamples=499, seed=simulation)
        covered += estimate.ci_low <= true_rate <= estimate.ci_high
    assert 0.90 <= covered / simulations <= 0.99, covered


def test_win_rate_counts_ties_half_and_handles_no_prompts() -> None:
    estimate = win_rate([1.0, 0.5, 0.0, 1.0], **FAST)
    assert estimate.value == pytest.approx(0.625) and estimate.n == 4
    assert estimate.ci_low <= 0.625 <= estimate.ci_high
    empty = win_rate([])
    assert math.isnan(empty.value) and empty.n == 0 and empty.to_dict()["value"] is None


# --- length-controlled win rate ----------------------------------------------------------------


def _length_biased_judge(rng: np.random.Generator, n: int, preference: float,
                         shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Runs whose answers differ from the reference's only in length (longer on average); the
    judge prefers the run with probability `preference` at equal length, more when it is longer."""
    differences = rng.normal(120.0, 150.0, n)
    logit = special.logit(preference)
    if shape == "linear":
        logit = logit + differences / 100.0
    else:  # saturating, as AlpacaEval's covariate assumes
        logit = logit + 2.0 * np.tanh(differences / 150.0)
    outcomes = (rng.random(n) < special.expit(logit)).astype(float)
    return outcomes, differences


@pytest.mark.parametrize("shape", ["linear", "saturating"])
def test_length_controlled_win_rate_recovers_the_true_preference_when_only_length_differs(shape: str) -> None:
    outcomes, differences = _length_biased_judge(np.random.default_rng(3), 1000, 0.5, shape)
    raw = win_rate(outcomes, **FAST)
    controlled = length_controlled_win_rate(outcomes, differences, **FAST)
    assert raw.ci_low > 0.6  # the raw win rate credits the run with its length
    assert controlled.ci_low < 0.5 < controlled.ci_high
    assert abs(controlled.value - 0.5) < 0.05
    assert controlled.n == 1000 and controlled.method == raw.method == "paired-bootstrap-percentile"


def test_length_controlled_win_rate_keeps_a_real_preference() -> None:
    outcomes, differences = _length_biased_judge(np.random.default_rng(4), 1500, 0.7, "saturating")
    controlled = length_controlled_win_rate(outcomes, differences, **FAST)
    assert controlled.ci_low < 0.7 < controlled.ci_high


def test_length_controlled_win_rate_is_the_soft_logistic_fit_of_an_independent_optimizer() -> None:
    rng = np.random.default_rng(5)
    outcomes = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=60)  # graded verdicts as soft targets
    differences = rng.normal(30.0, 80.0, 60)
    x = np.tanh(differences / np.std(differences, ddof=1))
    penalty = 0.01

    def loss(beta: np.ndarray) -> float:
        eta = beta[0] + beta[1] * x
        return float(-np.sum(outcomes * eta - np.logaddexp(0.0, eta)) + penalty / 2 * beta @ beta)

    reference = optimize.minimize(loss, np.zeros(2), method="BFGS", options={"gtol": 1e-12}).x
    intercept, slope = fit_soft_logistic(outcomes, length_feature(differences), penalty)
    assert float(intercept) == pytest.approx(reference[0], abs=1e-6)
    assert float(slope) == pytest.approx(reference[1], abs=1e-6)
    value = length_controlled_win_rate(outcomes, differences, n_resamples=99).value
    assert value == pytest.approx(float(special.expit(reference[0])), abs=1e-6)


def test_length_controlled_win_rate_stays_finite_under_separation_and_without_length_spread() -> None:
    differences = np.linspace(-50.0, 200.0, 40)
    for outcomes, side in ((np.ones(40), 1), (np.zeros(40), 0)):
        estimate = length_controlled_win_rate(outcomes, differences, **FAST)
        assert all(math.isfinite(v) for v in (estimate.value, estimate.standard_error, estimate.ci_low,
                                               estimate.ci_high))
        assert abs(estimate.value - side) < 0.05
    # Every difference the same: length says nothing, the lightly regularised raw rate remains.
    outcomes = np.array([1.0, 0.0, 1.0, 1.0, 0.5] * 8)
    same = length_controlled_win_rate(outcomes, np.full(40, 25.0), **FAST)
    assert same.value == pytest.approx(outcomes.mean(), abs=1e-3)
    with pytest.raises(ValueError, match=r"length_differences\[1\]"):
        length_controlled_win_rate([1.0, 0.0], [3.0, math.nan])


# --- Bradley-Terry ------------------------------------------------------------------------------

TRUE_STRENGTHS = {"ref": 0.0, "alpha_0.5": 0.4, "alpha_1.0": 0.9, "small": -0.6}


def _tournament(rng: np.random.Generator, prompts: int) -> tuple[list[tuple[str, str, float]], list[int]]:
    """Every run against the reference on every prompt, and some runs against each other, with
    graded and tied outcomes; the prompt id groups a prompt's comparisons."""
    names = list(TRUE_STRENGTHS)
    comparisons, groups = [], []
    for prompt in range(prompts):
        for a, b in [(n, "ref") for n in names[1:]] + [("alpha_1.0", "alpha_0.5"), ("small", "alpha_0.5")]:
            p = special.expit(TRUE_STRENGTHS[a] - TRUE_STRENGTHS[b])
            outcome = float(rng.choice([1.0, 0.75, 0.5, 0.25, 0.0], p=[p * 0.7, p * 0.2, 0.1, (1 - p) * 0.2,
                                                                          (1 - p) * 0.7]))
            comparisons.append((a, b, outcome) if rng.random() < 0.5 else (b, a, 1.0 - outcome))
            groups.append(prompt)
    return comparisons, groups


def _independent_fit(comparisons: list[tuple[str, str, float]], anchor: str, penalty: float) -> dict[str, float]:
    """Bradley-Terry by scipy's optimizer on the raw comparisons, anchor-relative strengths."""
    names = sorted({n for c in comparisons for n in c[:2]})
    index = {n: k for k, n in enumerate(names)}
    i = np.array([index[c[0]] for c in comparisons])
    j = np.array([index[c[1]] for c in comparisons])
    y = np.array([c[2] for c in comparisons])

    def loss_and_gradient(s: np.ndarray) -> tuple[float, np.ndarray]:
        eta = s[i] - s[j]
        residual = y - special.expit(eta)
        gradient = np.bincount(i, residual, len(names)) - np.bincount(j, residual, len(names))
        if penalty == 0:  # unpenalized: fix the anchor's strength at 0 instead
            gradient[index[anchor]] = 0.0
        loss = -np.sum(y * eta - np.logaddexp(0.0, eta)) + penalty / 2 * s @ s
        return float(loss), -gradient + penalty * s

    fitted = optimize.minimize(loss_and_gradient, np.zeros(len(names)), jac=True, method="BFGS",
                               options={"gtol": 1e-11, "maxiter": 10_000}).x
    return {n: float(fitted[index[n]] - fitted[index[anchor]]) for n in names}


@pytest.mark.parametrize("penalty", [0.0, 1e-6, 0.5])
def test_bradley_terry_matches_an_independent_maximum_likelihood_fit(penalty: float) -> None:
    comparisons, groups = _tournament(np.random.default_rng(21), 150)
    result = bradley_terry(comparisons, groups=groups, anchor="ref", regularization=penalty, n_resamples=199)
    reference = _independent_fit(comparisons, "ref", penalty)
    for name, strength in reference.items():
        assert result.strengths[name] == pytest.approx(strength, abs=1e-6), name
        assert result.scores[name].value == pytest.approx(ELO_ANCHOR + ELO_SCALE * strength, abs=1e-4)
        assert result.win_rates[name].value == pytest.approx(float(special.expit(strength)), abs=1e-6)


def test_bradley_terry_recovers_the_ranking_with_intervals_around_the_truth() -> None:
    comparisons, groups = _tournament(np.random.default_rng(22), 400)
    result = bradley_terry(comparisons, groups=groups, anchor="ref", **FAST)
    assert result.ranking == ("alpha_1.0", "alpha_0.5", "ref", "small")
    assert result.anchor == "ref" and result.scale == "elo" and result.n_groups == 400
    assert result.method == "grouped-bootstrap-percentile"
    assert result.scores["ref"].value == ELO_ANCHOR and result.scores["ref"].standard_error == 0.0
    # Graded verdicts shrink toward a tie, so the fitted strengths are smaller than the true
    # ones but in the same order; the intervals are the bootstrap's, and ordered likewise.
    high, low = result.scores["alpha_1.0"], result.scores["small"]
    assert low.ci_high < ELO_ANCHOR < high.ci_low
    assert result.scores["alpha_0.5"].ci_low > ELO_ANCHOR
    logit = bradley_terry(comparisons, groups=groups, anchor="ref", scale="logit", **FAST)
    assert logit.scores["alpha_1.0"].value == pytest.approx(result.strengths["alpha_1.0"])
    assert logit.scores["ref"].value == 0.0


def test_bradley_terry_grouped_bootstrap_moves_a_prompts_comparisons_together() -> None:
    comparisons, _ = _tournament(np.random.default_rng(23), 200)
    # Each comparison asked twice (both orders) with the same verdict: twice the data, no new
    # information. Grouped by prompt the interval is that of the single copy; ungrouped it is
    # too narrow by about sqrt(2).
    doubled = [c for c in comparisons for _ in range(2)]
    ids = [k for k in range(len(comparisons)) for _ in range(2)]
    single = bradley_terry(comparisons, anchor="ref", **FAST).scores["alpha_1.0"]
    grouped = bradley_terry(doubled, groups=ids, anchor="ref", **FAST).scores["alpha_1.0"]
    ungrouped = bradley_terry(doubled, anchor="ref", **FAST).scores["alpha_1.0"]
    assert grouped.standard_error == pytest.approx(single.standard_error, rel=0.1)
    assert ungrouped.standard_error == pytest.approx(single.standard_error / math.sqrt(2), rel=0.1)


def test_bradley_terry_stays_finite_when_a_model_wins_everything_or_is_rarely_seen() -> None:
    comparisons = [("champion", "ref", 1.0)] * 20 + [("other", "ref", 0.5), ("other", "ref", 1.0)] * 10
    comparisons.append(("rare", "ref", 1.0))
    result = bradley_terry(comparisons, **FAST)  # anchor: the first model named is "champion"
    assert result.anchor == "champion" and result.ranking[0] == "champion"
    for estimate in result.scores.values():
        assert math.isfinite(estimate.value)
    # "rare" is absent from about a third of the resamples: left out and counted, not NaN.
    rare = result.scores["rare"]
    assert 200 < rare.undefined_resamples < 500 and math.isfinite(rare.standard_error)
    with pytest.raises(ValueError, match="'nobody'"):
        bradley_terry(comparisons, anchor="nobody")
    with pytest.raises(ValueError, match=r"comparisons\[0\] compares 'a' with itself"):
        bradley_terry([("a", "a", 1.0)])
    with pytest.raises(ValueError, match="groups and comparisons differ"):
        bradley_terry(comparisons, groups=[1, 2])


# --- what the JSON files get --------------------------------------------------------------------


def test_estimates_and_bradley_terry_results_write_as_the_project_writes_estimates() -> None:
    outcomes = [1.0, 0.0, 0.5, 1.0, 1.0, 0.0]
    estimates = [win_rate(outcomes, **FAST), length_controlled_win_rate(outcomes, [5, -3, 0, 40, 12, -8], **FAST),
                 position_inconsistency(outcomes, outcomes[::-1], **FAST),
                 position_inconsistency(outcomes, outcomes[::-1], method="exact")]
    for estimate in estimates:
        assert isinstance(estimate, Estimate)
        written = estimate.to_dict()
        assert set(written) == ESTIMATE_KEYS and written["n"] == 6
        json.dumps(written, allow_nan=False)
    result = bradley_terry([("a", "ref", 1.0), ("b", "ref", 0.0), ("a", "b", 0.5), ("a", "ref", 0.5)],
                           groups=["p1", "p1", "p1", "p2"], anchor="ref", **FAST)
    written = result.to_dict()
    assert set(written) == {"scores", "win_rates", "ranking", "anchor", "scale", "n_comparisons", "n_groups",
                            "regularization", "method"}
    assert set(written["scores"]) == {"a", "b", "ref"} and set(written["scores"]["a"]) == ESTIMATE_KEYS
    assert written["ranking"] == ["a", "ref", "b"] and written["n_groups"] == 2 and written["n_comparisons"] == 4
    json.dumps(written, allow_nan=False)
