"""Prediction-powered inference for a mean: the numbers equal the formulas computed here by hand,
and over repeated draws from a known truth the PPI interval covers it as often as its level says,
while the judge alone, biased, does not."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy import stats

from eft_eval.stats import (
    Estimate,
    classical_mean_estimate,
    effective_labels,
    independent_difference,
    ppi_mean_estimate,
)

# A fixed small dataset: human labels Y and judge labels Yhat on 10 labelled items, the judge on 20 others.
SMALL_Y = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
SMALL_YHAT = [1, 0, 1, 0, 0, 1, 1, 0, 1, 1]
SMALL_UNLABELLED = [1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 1]


def _pvar(values: list[float]) -> float:
    return statistics.pvariance(values)


def _by_hand(y: list[float], yhat: list[float], unlabelled: list[float], lam: float | None,
             level: float) -> tuple[float, float, float, float]:
    """(lambda, estimate, ci_low, ci_high) from the papers' formulas, with the statistics module."""
    n, big_n = len(y), len(unlabelled)
    if lam is None:  # PPI++: cov(Y, Yhat) / ((1 + n/N) var(Yhat over every item)), clipped to [0, 1]
        my, mh = statistics.fmean(y), statistics.fmean(yhat)
        cov = sum((a - my) * (b - mh) for a, b in zip(y, yhat)) / n
        lam = min(1.0, max(0.0, cov / ((1 + n / big_n) * statistics.variance(yhat + unlabelled))))
    rectifier = [a - lam * b for a, b in zip(y, yhat)]
    estimate = lam * statistics.fmean(unlabelled) + statistics.fmean(rectifier)
    se = math.sqrt(lam ** 2 * _pvar(unlabelled) / big_n + _pvar(rectifier) / n)
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    return lam, estimate, estimate - z * se, estimate + z * se


@pytest.mark.parametrize("lam", [None, 1.0, 0.5, 0.0])
def test_numbers_equal_the_formulas(lam: float | None) -> None:
    result = ppi_mean_estimate(SMALL_Y, SMALL_YHAT, SMALL_UNLABELLED, confidence_level=0.9, lam=lam)
    weight, estimate, low, high = _by_hand(SMALL_Y, SMALL_YHAT, SMALL_UNLABELLED, lam, 0.9)
    assert result.lam == pytest.approx(weight)
    assert (result.ppi.value, result.ppi.ci_low, result.ppi.ci_high) == pytest.approx((estimate, low, high))
    assert result.ppi.method == ("ppi++-clt" if lam is None else "ppi-clt")
    assert result.ppi.confidence_level == 0.9 and result.ppi.n == 30
    assert (result.n_labels, result.n_unlabelled, result.n_items) == (10, 20, 30)
    # Judge alone: its mean over all 30 items; humans alone: theirs over the 10 labels.
    assert result.judge_only.value == pytest.approx(statistics.fmean(SMALL_YHAT + SMALL_UNLABELLED))
    assert result.human_only.value == pytest.approx(0.6)
    assert result.human_only.standard_error == pytest.approx(math.sqrt(_pvar(SMALL_Y) / 10))
    assert result.effective_labels == pytest.approx(10 * result.human_only.standard_error ** 2
                                                    / result.ppi.standard_error ** 2)


def test_numbers_equal_ppi_python_on_the_small_dataset() -> None:
    # Cross-check only. Copied from ppi-python 0.2.3 (pip install ppi-python into a throwaway venv):
    #   ppi_py.ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=0.1)          -> (0.375903528055, 0.824096471945)
    #   ppi_py.ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=0.1, lam=1)   -> (0.305759638168, 0.894240361832)
    #   ppi_py.classical_mean_ci(Y, alpha=0.1)                          -> (0.345180371835, 0.854819628165)
    # with Y, Yhat, Yhat_unlabeled = SMALL_Y, SMALL_YHAT, SMALL_UNLABELLED as float arrays.
    tuned = ppi_mean_estimate(SMALL_Y, SMALL_YHAT, SMALL_UNLABELLED, confidence_level=0.9)
    plain = ppi_mean_estimate(SMALL_Y, SMALL_YHAT, SMALL_UNLABELLED, confidence_level=0.9, lam=1.0)
    assert tuned.ppi.interval == pytest.approx((0.375903528055, 0.824096471945), abs=1e-10)
    assert plain.ppi.interval == pytest.approx((0.305759638168, 0.894240361832), abs=1e-10)
    assert tuned.human_only.interval == pytest.approx((0.345180371835, 0.854819628165), abs=1e-10)


def test_tuned_lambda_nearly_minimises_the_variance() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(size=600)
    judge = 0.7 * truth + rng.normal(scale=0.8, size=600)
    human = truth + rng.normal(scale=0.3, size=600)
    y, yhat, unlabelled = human[:100], judge[:100], judge[100:]
    tuned = ppi_mean_estimate(y, yhat, unlabelled)
    grid = [ppi_mean_estimate(y, yhat, unlabelled, lam=lam).ppi.standard_error for lam in np.linspace(0, 1, 201)]
    # The tuned lambda is the optimum's plug-in estimate (judge variance pooled over every item, the
    # covariance from the labelled ones), the grid the exact minimum of this sample's SE: close, not equal.
    assert min(grid) <= tuned.ppi.standard_error <= min(grid) * 1.005
    assert 0 < tuned.lam < 1


def _simulate(rng: np.random.Generator, n: int, big_n: int, bias: float, judge_noise: float,
              human_noise: float, mean: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items of true quality t ~ N(mean, 1); the judge says t + bias + noise, a person t + noise."""
    truth = rng.normal(mean, 1.0, size=n + big_n)
    judge = truth + bias + rng.normal(scale=judge_noise, size=n + big_n)
    human = truth[:n] + rng.normal(scale=human_noise, size=n)
    return human, judge[:n], judge[n:]


def _binomial_band(p: float, reps: int) -> tuple[float, float]:
    half = 4 * math.sqrt(p * (1 - p) / reps)
    return p - half, p + half


def test_ppi_covers_the_truth_and_the_biased_judge_does_not() -> None:
    rng = np.random.default_rng(20231110)
    reps, level, truth = 1000, 0.9, 0.5
    covered = {"ppi": 0, "judge_only": 0, "human_only": 0}
    widths: dict[str, list[float]] = {"ppi": [], "human_only": []}
    n_effective = []
    for _ in range(reps):
        human, judge, unlabelled = _simulate(rng, 100, 1000, bias=0.3, judge_noise=0.5, human_noise=0.5)
        result = ppi_mean_estimate(human, judge, unlabelled, confidence_level=level)
        for name in covered:
            estimate = getattr(result, name)
            covered[name] += estimate.ci_low <= truth <= estimate.ci_high
        for name in widths:
            estimate = getattr(result, name)
            widths[name].append(estimate.ci_high - estimate.ci_low)
        n_effective.append(result.effective_labels)
    low, high = _binomial_band(level, reps)
    assert low <= covered["ppi"] / reps <= high
    assert low <= covered["human_only"] / reps <= high
    assert covered["judge_only"] / reps < 0.05  # bias 0.3 against a standard error of about 0.035
    assert np.mean(widths["ppi"]) < 0.75 * np.mean(widths["human_only"])
    # Labels alone: variance 1.25 / n. PPI++: lambda = cov / ((1 + n/N) var(judge)) = 1 / (1.1 * 1.25),
    # variance (1.25 + 1.25 lambda^2 - 2 lambda) / n + 1.25 lambda^2 / N = 0.00522: 2.39 times less,
    # so the 100 labels are worth about 239.
    assert 215 < np.median(n_effective) < 265


def test_binary_any_error_rate_is_covered_despite_a_lenient_judge() -> None:
    """A count judge reduced to "any error": it misses half of the errors (sensitivity 0.5) and
    flags 5% of clean responses; people miss 5% and flag 5%."""
    rng = np.random.default_rng(11)
    reps, level, error_rate = 800, 0.95, 0.3
    truth = error_rate * 0.95 + (1 - error_rate) * 0.05  # the rate people report: what PPI estimates
    covered_ppi = covered_judge = 0
    for _ in range(reps):
        errors = rng.random(1200) < error_rate
        judge = np.where(errors, rng.random(1200) < 0.5, rng.random(1200) < 0.05).astype(float)
        human = np.where(errors[:200], rng.random(200) < 0.95, rng.random(200) < 0.05).astype(float)
        result = ppi_mean_estimate(human, judge[:200], judge[200:], confidence_level=level)
        covered_ppi += result.ppi.ci_low <= truth <= result.ppi.ci_high
        covered_judge += result.judge_only.ci_low <= truth <= result.judge_only.ci_high
    low, high = _binomial_band(level, reps)
    assert low <= covered_ppi / reps <= high
    assert covered_judge / reps < 0.01


def test_an_uninformative_judge_costs_nothing() -> None:
    rng = np.random.default_rng(5)
    human = rng.normal(size=200)
    noise = rng.normal(size=2200)  # the judge's scores have nothing to do with the items
    result = ppi_mean_estimate(human, noise[:200], noise[200:])
    assert result.lam < 0.15
    assert result.ppi.standard_error <= result.human_only.standard_error * 1.01


def test_every_item_labelled_gives_the_human_only_estimate() -> None:
    result = ppi_mean_estimate(SMALL_Y, SMALL_YHAT, [])
    assert result.lam == 0 and result.n_unlabelled == 0
    assert result.ppi.value == pytest.approx(result.human_only.value)
    assert result.ppi.standard_error == pytest.approx(result.human_only.standard_error)
    assert result.effective_labels == pytest.approx(10)


def test_too_few_labels_are_undefined_not_wrong() -> None:
    result = ppi_mean_estimate([1.0], [1.0], [0.0, 1.0])
    assert math.isnan(result.ppi.value) and math.isnan(result.human_only.standard_error)
    assert math.isnan(result.effective_labels)
    with pytest.raises(ValueError, match="differ in length"):
        ppi_mean_estimate([1.0, 0.0], [1.0], [0.0])
    with pytest.raises(ValueError, match="finite"):
        ppi_mean_estimate([1.0, float("nan")], [1.0, 0.0], [0.0])


def test_difference_of_independent_runs_adds_variances() -> None:
    a = Estimate(0.30, 0.03, 0.0, 0.0, 100, 0.95, method="ppi++-clt")
    b = Estimate(0.40, 0.04, 0.0, 0.0, 120, 0.95, method="ppi++-clt")
    d = independent_difference(a, b)
    z = stats.norm.ppf(0.975)
    assert (d.value, d.standard_error) == pytest.approx((0.10, 0.05))
    assert d.interval == pytest.approx((0.10 - z * 0.05, 0.10 + z * 0.05))
    assert d.method == "independent-difference-clt" and d.n == 220


def test_difference_of_two_corrected_runs_covers_the_true_difference() -> None:
    rng = np.random.default_rng(17)
    reps, level = 600, 0.9
    covered = 0
    for _ in range(reps):
        a = ppi_mean_estimate(*_simulate(rng, 80, 800, 0.4, 0.5, 0.4, mean=0.2), confidence_level=level)
        b = ppi_mean_estimate(*_simulate(rng, 80, 800, 0.1, 0.5, 0.4, mean=0.5), confidence_level=level)
        d = independent_difference(a.ppi, b.ppi)
        covered += d.ci_low <= 0.3 <= d.ci_high
    low, high = _binomial_band(level, reps)
    assert low <= covered / reps <= high


def test_classical_and_effective_labels_helpers() -> None:
    c = classical_mean_estimate([1.0, 2.0, 3.0, 4.0], confidence_level=0.95)
    assert c.standard_error == pytest.approx(math.sqrt(1.25 / 4)) and c.method == "clt"
    same = Estimate(0.5, 0.1, 0.3, 0.7, 10)
    half = Estimate(0.5, 0.05, 0.4, 0.6, 10)
    assert effective_labels(10, same, half) == pytest.approx(40)
    assert math.isnan(effective_labels(10, same, Estimate(0.5, 0.0, 0.5, 0.5, 10)))
