"""Krippendorff's alpha of a jury: the package's value, and the reweighted alpha the bootstrap uses
equal to the package's alpha of the resampled matrix, at every level of measurement."""

from __future__ import annotations

import math
from types import SimpleNamespace

import krippendorff
import numpy as np
import pytest

from eft_eval.stats import krippendorff_alpha, krippendorff_alpha_estimate
from eft_eval.stats._jury import alpha_level, weighted_alpha


def jury(level: str, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.normal(5, 2, n)
    matrix = np.vstack([truth + rng.normal(0, 1, n) for _ in range(3)])
    if level != "interval":
        matrix = np.round(matrix).clip(0, 10)
    if level == "nominal":
        matrix = (matrix > 5).astype(float)
    matrix[0, ::7] = np.nan  # a model that did not score some responses
    matrix[1, ::11] = np.nan
    return matrix


@pytest.mark.parametrize("level", ["interval", "ordinal", "nominal"])
def test_reweighted_alpha_is_the_packages_alpha_of_the_resample(level: str) -> None:
    matrix = jury(level, 40)
    assert krippendorff_alpha(matrix, level) == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement=level), rel=1e-12)
    rng = np.random.default_rng(2)
    for _ in range(5):
        drawn = rng.integers(0, 40, 40)
        weights = np.bincount(drawn, minlength=40).astype(float)[None]
        expected = krippendorff.alpha(reliability_data=matrix[:, drawn], level_of_measurement=level)
        assert weighted_alpha(matrix, level, weights)[0] == pytest.approx(expected, rel=1e-10)


def test_the_interval_is_a_bootstrap_over_items_and_seeded() -> None:
    matrix = jury("interval", 60)
    estimate = krippendorff_alpha_estimate(matrix, "interval", n_resamples=500)
    assert estimate.ci_low < estimate.value < estimate.ci_high and estimate.n == 60
    assert estimate == krippendorff_alpha_estimate(matrix, "interval", n_resamples=500)
    # The bootstrap SE from resampling columns by hand with the package: the same distribution.
    rng = np.random.default_rng(0)
    weights = rng.multinomial(60, np.full(60, 1 / 60), size=500)
    by_hand = [krippendorff.alpha(reliability_data=np.repeat(matrix, w, axis=1), level_of_measurement="interval")
               for w in weights]
    assert estimate.standard_error == pytest.approx(float(np.std(by_hand, ddof=1)), rel=1e-9)


def test_large_continuous_juries_use_the_closed_form() -> None:
    matrix = jury("interval", 3000)  # the package would allocate 3000 x 9000 x 9000 floats
    assert krippendorff_alpha(matrix, "interval") == pytest.approx(
        weighted_alpha(matrix, "interval", np.ones((1, 3000)))[0])


def test_undefined_alpha_is_nan_not_an_error() -> None:
    assert math.isnan(krippendorff_alpha([[1, 1, 1], [1, 1, 1]], "nominal"))  # one value: no disagreement possible
    assert math.isnan(krippendorff_alpha([[1, np.nan], [np.nan, 2]], "interval"))  # no response scored twice
    assert math.isnan(krippendorff_alpha_estimate([[1, 1], [1, 1]], "ordinal").ci_low)
    with pytest.raises(ValueError, match="unknown level of measurement 'ratio'"):
        krippendorff_alpha([[1, 2], [2, 1]], "ratio")


def test_level_follows_the_judges_score() -> None:
    assert alpha_level(SimpleNamespace(kind="number", min=0, max=100)) == "interval"
    assert alpha_level(SimpleNamespace(kind="integer", min=0, max=None)) == "ordinal"
    assert alpha_level(SimpleNamespace(kind="integer", min=0, max=1)) == "nominal"
    assert alpha_level(None) == "interval"
