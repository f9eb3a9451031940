"""Agreement statistics: hand-computed values, and the bootstrap against textbook formulas."""

from __future__ import annotations

import math

import pytest

from eft_eval.stats import (
    agreement_estimate,
    agreement_rate,
    analytic_proportion_se,
    cohens_kappa,
    confusion_matrix,
    kappa_estimate,
    proportion_estimate,
)

JUDGE = [True, True, True, False, False, False, False, False, True, False]
HUMAN = [True, True, False, False, False, True, False, False, True, False]


def test_hand_computed_agreement_kappa_and_confusion() -> None:
    m = confusion_matrix(JUDGE, HUMAN)
    assert m.as_rows() == [[3, 1], [1, 5]] and m.n == 10
    assert agreement_rate(JUDGE, HUMAN) == pytest.approx(0.8)
    # p_o = 0.8; both label 4/10 as errors, so p_e = 0.4*0.4 + 0.6*0.6 = 0.52.
    assert cohens_kappa(JUDGE, HUMAN) == pytest.approx((0.8 - 0.52) / (1 - 0.52))


@pytest.mark.parametrize("n,p", [(30, 0.5), (30, 0.2), (57, 0.3), (100, 0.1), (400, 0.65)])
def test_bootstrap_se_of_a_proportion_matches_the_analytic_formula(n: int, p: float) -> None:
    ones = round(p * n)
    estimate = proportion_estimate([True] * ones + [False] * (n - ones), seed=1)
    p_hat = ones / n
    analytic = analytic_proportion_se(p_hat, n)
    assert estimate.value == pytest.approx(p_hat)
    assert abs(estimate.standard_error - analytic) / analytic < 0.05, (estimate.standard_error, analytic)
    # The 95% interval is about two standard errors either side.
    assert estimate.ci_low < p_hat < estimate.ci_high
    assert (estimate.ci_high - estimate.ci_low) / (2 * 1.96 * analytic) == pytest.approx(1, abs=0.15)


def test_agreement_se_is_the_se_of_the_agreement_indicator() -> None:
    paired = agreement_estimate(JUDGE * 4, HUMAN * 4, seed=3)
    indicator = proportion_estimate([a == b for a, b in zip(JUDGE * 4, HUMAN * 4)], seed=3)
    assert paired.value == pytest.approx(0.8) and paired.n == 40
    assert paired.standard_error == pytest.approx(indicator.standard_error)  # same seed, same resamples
    assert abs(paired.standard_error - analytic_proportion_se(0.8, 40)) / analytic_proportion_se(0.8, 40) < 0.05


def test_fixed_seed_is_reproducible_and_seed_matters() -> None:
    a = kappa_estimate(JUDGE * 3, HUMAN * 3, seed=5)
    assert a == kappa_estimate(JUDGE * 3, HUMAN * 3, seed=5)
    assert a.standard_error != kappa_estimate(JUDGE * 3, HUMAN * 3, seed=6).standard_error
    assert a.value == pytest.approx(cohens_kappa(JUDGE, HUMAN))


def test_undefined_statistics_are_nan_not_errors() -> None:
    # Both labellings constant and equal: chance agreement is 1, kappa undefined.
    undefined = kappa_estimate([True] * 5, [True] * 5)
    assert math.isnan(undefined.value) and math.isnan(undefined.standard_error)
    assert undefined.to_dict()["value"] is None  # strict JSON
    assert math.isnan(proportion_estimate([]).value) and proportion_estimate([]).n == 0
    # Constant data: zero spread, no warning turned error.
    constant = proportion_estimate([True] * 12)
    assert constant.value == 1 and constant.standard_error == 0
    with pytest.raises(ValueError, match="differ in length"):
        agreement_rate([True], [True, False])
