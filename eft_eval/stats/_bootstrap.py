"""Bootstrap standard errors and percentile intervals, one item-resampling implementation.

`bootstrap_estimate` resamples *items* with `scipy.stats.bootstrap` (paired: every array is
resampled with the same item indices; percentile interval; fixed seed). Percentile rather than
BCa because many statistics here are proportions of 0/1 data, where BCa's jackknife acceleration
is undefined for small or one-sided samples and scipy would warn or return NaN.

The studies compare several runs over the same prompts. `resample_means` draws one matrix of
prompt indices and applies it to every run (paired), so the correlation between runs, which is
what makes a difference or a ratio of differences precise, is kept; `paired=False` draws
independently per run, for comparison. `distribution_estimate` turns any function of those
resampled means into an `Estimate`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from eft_eval.stats._estimate import (
    DEFAULT_CONFIDENCE_LEVEL,
    DEFAULT_N_RESAMPLES,
    DEFAULT_SEED,
    Estimate,
)


def bootstrap_estimate(
    arrays: Sequence[Sequence[bool] | Sequence[float] | np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
    seed: int = DEFAULT_SEED,
) -> Estimate:
    """Bootstrap one statistic of paired per-item arrays, resampling items.

    `statistic(*arrays, axis=-1)` must be vectorized along the last axis. With fewer than two
    items the bootstrap says nothing, so SE and interval are NaN.
    """
    data = [np.asarray(x, dtype=float) for x in arrays]
    n = len(data[0]) if data else 0
    value = float(statistic(*data, axis=-1)) if n else math.nan
    if n < 2:
        return Estimate(value, math.nan, math.nan, math.nan, n, confidence_level)
    with warnings.catch_warnings():
        # Constant data (every item agrees) is a legitimate outcome here, not a problem to warn of.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            tuple(data),
            statistic,
            n_resamples=n_resamples,
            vectorized=True,
            paired=True,
            axis=-1,
            confidence_level=confidence_level,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    distribution = np.asarray(result.bootstrap_distribution, dtype=float)
    if not np.isnan(distribution).any():
        return Estimate(value, float(result.standard_error), float(result.confidence_interval.low),
                        float(result.confidence_interval.high), n, confidence_level)
    return distribution_estimate(value, distribution, n, confidence_level, method="bootstrap-percentile")


def distribution_estimate(
    value: float,
    distribution: np.ndarray,
    n: int,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
    method: str = "paired-bootstrap-percentile",
) -> Estimate:
    """An `Estimate` from a bootstrap distribution: SD (ddof=1) and percentile interval.

    Resamples where the statistic is undefined (NaN or infinite, e.g. a zero denominator) are
    left out and counted rather than turning the whole interval into NaN.
    """
    distribution = np.asarray(distribution, dtype=float)
    defined = distribution[np.isfinite(distribution)]
    undefined = int(distribution.size - defined.size)
    if defined.size < 2:
        return Estimate(value, math.nan, math.nan, math.nan, n, confidence_level, undefined, method)
    alpha = (1 - confidence_level) / 2
    low, high = (float(q) for q in np.quantile(defined, [alpha, 1 - alpha]))
    return Estimate(value, float(np.std(defined, ddof=1)), low, high, n, confidence_level, undefined, method)


def resample_means(
    matrix: np.ndarray,
    *,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
    paired: bool = True,
) -> np.ndarray:
    """Bootstrap means of each row of `matrix` (runs x prompts): shape (n_resamples, runs).

    Paired: one set of prompt indices per resample, shared by every run. Unpaired: each run
    draws its own. Vectorized: one integer matrix of indices, no Python loop over resamples.
    """
    matrix = np.asarray(matrix, dtype=float)
    n = matrix.shape[1]
    rng = np.random.default_rng(seed)
    if paired:
        indices = rng.integers(0, n, size=(n_resamples, n))
        return np.stack([row[indices].mean(axis=1) for row in matrix], axis=1)
    return np.stack([row[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1) for row in matrix], axis=1)
