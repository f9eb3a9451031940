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

Memory: resampling draws one index per item per resample, `n_resamples x n_items` in all (for
1e6 resamples of 500 prompts, 4 GB of indices and 4 GB of scores gathered by them). It runs in
blocks of about `BLOCK_VALUES` values (scipy's own `batch=`; `paired_mean_blocks`), so only each
statistic's distribution is kept whole (`MAX_N_RESAMPLES` bounds it). A seed gives the same
numbers every time; the blocks rarely shift the random stream against one big draw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from scipy import stats

from eft_eval.stats._estimate import (
    DEFAULT_CONFIDENCE_LEVEL,
    DEFAULT_N_RESAMPLES,
    DEFAULT_SEED,
    Estimate,
    checked_bootstrap,
)

BLOCK_VALUES = 1 << 20
"""Resampled values (indices, or data gathered by them) held at once: 8 MB an array."""


def block_size(width: int) -> int:
    """Resamples per block when each resample holds `width` values: an even number, because numpy
    draws small integers in pairs of 32-bit halves and drops an unused half at the end of a call;
    even blocks then almost always continue the stream one big draw would have drawn."""
    return max(2, (BLOCK_VALUES // max(width, 1)) // 2 * 2)


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
    n_resamples, seed, confidence_level = checked_bootstrap(n_resamples, seed, confidence_level)
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
            batch=block_size(n),  # bounds scipy's resampled copies of the data, not just the result
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
    draws its own, run after run. Vectorized within blocks of resamples.
    """
    if paired:
        return np.concatenate(list(paired_mean_blocks(matrix, n_resamples=n_resamples, seed=seed)))
    n_resamples, seed, _ = checked_bootstrap(n_resamples, seed)
    matrix = np.asarray(matrix, dtype=float)
    rng = np.random.default_rng(seed)
    return np.stack([np.concatenate([row[indices].mean(axis=1)
                                     for indices in _index_blocks(rng, row.size, n_resamples)])
                     for row in matrix], axis=1)


def paired_mean_blocks(
    matrix: np.ndarray, *, n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = DEFAULT_SEED, width: int = 0,
) -> Iterator[np.ndarray]:
    """`resample_means(matrix, paired=True)` in consecutive blocks of rows, for a
    caller that keeps only a summary of each block. `width`: values a caller computes per resample
    beyond the prompt indices (e.g. points x points comparisons), to size the blocks by."""
    n_resamples, seed, _ = checked_bootstrap(n_resamples, seed)
    matrix = np.asarray(matrix, dtype=float)
    rng = np.random.default_rng(seed)
    for indices in _index_blocks(rng, matrix.shape[1], n_resamples, width):
        yield np.stack([row[indices].mean(axis=1) for row in matrix], axis=1)


def _index_blocks(rng: np.random.Generator, n: int, n_resamples: int, width: int = 0) -> Iterator[np.ndarray]:
    """Prompt indices, `n_resamples` rows of `n`, in blocks (`block_size`)."""
    step = block_size(max(n, width))
    for start in range(0, n_resamples, step):
        yield rng.integers(0, n, size=(min(step, n_resamples - start), n))
