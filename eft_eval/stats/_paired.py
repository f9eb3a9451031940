"""Paired comparisons of runs over the same prompts: normalized improvement and differences.

Runs of one study share their prompts (same task, same seed), so a prompt that is hard for one
configuration tends to be hard for the others. Resampling prompt ids jointly across the runs
(`resample_means(..., paired=True)`) keeps that correlation; resampling each run on its own would
count the between-prompt spread twice and overstate the uncertainty of a difference.

Inputs are matrices of scores, runs x prompts, over the prompts scored in every run (the caller
says how many; `eft_eval.analysis` builds them from run folders).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from eft_eval.stats._bootstrap import (
    bootstrap_estimate,
    distribution_estimate,
    resample_means,
)
from eft_eval.stats._estimate import BootstrapSettings, Estimate

DENOMINATOR_OK = "ok"
DENOMINATOR_ZERO = "zero"
DENOMINATOR_WITHIN_NOISE = "within_noise"


@dataclass(frozen=True)
class NormalizedImprovement:
    """`(x - small_ft) / (large_ft - small_ft)` for each other configuration, with its paired bootstrap."""

    denominator: Estimate
    """`large_ft - small_ft` on the paired prompts, with its bootstrap interval."""
    denominator_status: str
    """`ok`; `zero` (no ratio is given); `within_noise` (its interval holds 0: the ratio's
    interval is unbounded in principle, read it with care)."""
    estimates: dict[str, Estimate]
    """Per configuration name; value NaN when the denominator is zero."""
    distributions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Per configuration, the bootstrap distribution (NaN where a resample's denominator is 0),
    for combining independent studies (the paper's Figure 3 average over tasks)."""


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1.0), np.nan)


def normalized_improvement_distribution(
    small: np.ndarray, large: np.ndarray, others: np.ndarray,
) -> np.ndarray:
    """Vectorized ratio: `small`, `large` shape (B,), `others` shape (B, K) -> (B, K), NaN where 0/0."""
    return _ratio(others - small[:, None], (large - small)[:, None])


def normalized_improvement(
    small: Sequence[float] | np.ndarray,
    large: Sequence[float] | np.ndarray,
    others: dict[str, Sequence[float] | np.ndarray],
    settings: BootstrapSettings | None = None,
    *,
    paired: bool = True,
) -> NormalizedImprovement:
    """Normalized improvement of each configuration in `others`, 0 = `small`, 1 = `large`.

    All arrays hold scores of the same prompts in the same order. The direction of the judge
    does not matter: the ratio is 1 at the large fine-tuned model's score whichever way is better.
    `paired=False` resamples every run independently (for comparison only).
    """
    settings = settings or BootstrapSettings()
    names = list(others)
    matrix = np.vstack([np.asarray(small, float), np.asarray(large, float),
                        *[np.asarray(others[k], float) for k in names]])
    n = matrix.shape[1]
    means = matrix.mean(axis=1) if n else np.full(matrix.shape[0], math.nan)
    method = "paired-bootstrap-percentile" if paired else "unpaired-bootstrap-percentile"
    denominator_value = float(means[1] - means[0])
    if n >= 2:
        resampled = resample_means(matrix, n_resamples=settings.n_resamples, seed=settings.seed, paired=paired)
        ratios = normalized_improvement_distribution(resampled[:, 0], resampled[:, 1], resampled[:, 2:])
        denominator = distribution_estimate(denominator_value, resampled[:, 1] - resampled[:, 0], n,
                                            settings.confidence_level, method)
    else:
        ratios = np.full((0, len(names)), math.nan)
        denominator = Estimate(denominator_value, math.nan, math.nan, math.nan, n, settings.confidence_level, 0, method)
    status = _denominator_status(denominator)
    estimates = {}
    distributions = {name: ratios[:, index] for index, name in enumerate(names)} if status != DENOMINATOR_ZERO else {}
    for index, name in enumerate(names):
        value = math.nan if status == DENOMINATOR_ZERO or not n else (means[2 + index] - means[0]) / denominator_value
        if status == DENOMINATOR_ZERO or n < 2:
            estimates[name] = Estimate(float(value), math.nan, math.nan, math.nan, n,
                                       settings.confidence_level, 0, method)
        else:
            estimates[name] = distribution_estimate(float(value), ratios[:, index], n,
                                                    settings.confidence_level, method)
    return NormalizedImprovement(denominator, status, estimates, distributions)


def _denominator_status(denominator: Estimate) -> str:
    if math.isnan(denominator.value) or denominator.value == 0:
        return DENOMINATOR_ZERO
    if not math.isnan(denominator.ci_low) and denominator.ci_low <= 0 <= denominator.ci_high:
        return DENOMINATOR_WITHIN_NOISE
    return DENOMINATOR_OK


@dataclass(frozen=True)
class PairedDifference:
    """Mean of `b - a` over paired prompts, with a bootstrap interval and two rank/sign tests."""

    difference: Estimate
    wilcoxon_p: float
    """Two-sided Wilcoxon signed-rank p-value (NaN when every difference is 0)."""
    sign_test_p: float
    """Two-sided exact binomial test on the signs of the non-zero differences."""
    n_positive: int
    n_negative: int
    n_zero: int


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def paired_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, settings: BootstrapSettings | None = None,
) -> PairedDifference:
    """`b - a` prompt by prompt: the mean difference, its bootstrap interval, Wilcoxon and sign tests."""
    settings = settings or BootstrapSettings()
    differences = np.asarray(b, float) - np.asarray(a, float)
    estimate = bootstrap_estimate([differences], _mean, **settings.kwargs())
    estimate = Estimate(estimate.value, estimate.standard_error, estimate.ci_low, estimate.ci_high, estimate.n,
                        estimate.confidence_level, estimate.undefined_resamples, "paired-bootstrap-percentile")
    positive, negative = int((differences > 0).sum()), int((differences < 0).sum())
    wilcoxon_p = math.nan
    if positive + negative:
        # zero_method="wilcox" drops zero differences, as the sign test does.
        wilcoxon_p = float(stats.wilcoxon(differences, zero_method="wilcox").pvalue)
    sign_p = float(stats.binomtest(positive, positive + negative, 0.5).pvalue) if positive + negative else math.nan
    return PairedDifference(estimate, wilcoxon_p, sign_p, positive, negative, len(differences) - positive - negative)
