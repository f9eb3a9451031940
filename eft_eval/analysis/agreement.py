"""Agreement statistics between two binary labellings, with bootstrap standard errors.

Used by the human study (judge versus people, people versus expert gold). Labels are booleans
("any factual error"); every function takes plain sequences so it can be tested on hand-made data.

Uncertainty: `bootstrap_estimate` resamples *items* with `scipy.stats.bootstrap` (percentile
interval, fixed seed). Percentile rather than BCa because the statistics here are proportions
of 0/1 data, where BCa's jackknife acceleration is undefined for small or one-sided samples and
scipy would warn or return NaN; for a proportion the percentile interval is what readers expect.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

DEFAULT_N_RESAMPLES = 9999
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap standard error and confidence interval."""

    value: float
    """The statistic on the observed items (NaN when undefined, e.g. no items)."""
    standard_error: float
    """Standard deviation of the bootstrap distribution (ddof=1)."""
    ci_low: float
    ci_high: float
    n: int
    """Number of items the statistic is computed over."""
    confidence_level: float = 0.95
    undefined_resamples: int = 0
    """Resamples where the statistic was undefined (e.g. kappa with one class); left out."""

    def to_dict(self) -> dict[str, Any]:
        # JSON has no NaN: undefined numbers are written as null.
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of (row label, column label) pairs for binary labels; True = "any error"."""

    both_error: int
    row_error_col_no_error: int
    row_no_error_col_error: int
    both_no_error: int

    @property
    def n(self) -> int:
        return self.both_error + self.row_error_col_no_error + self.row_no_error_col_error + self.both_no_error

    def as_rows(self) -> list[list[int]]:
        """[[error/error, error/no error], [no error/error, no error/no error]]."""
        return [
            [self.both_error, self.row_error_col_no_error],
            [self.row_no_error_col_error, self.both_no_error],
        ]


def _as_bool_array(labels: Sequence[bool]) -> np.ndarray:
    return np.asarray([bool(x) for x in labels], dtype=float)


def _check_paired(a: Sequence[bool], b: Sequence[bool]) -> None:
    if len(a) != len(b):
        raise ValueError(f"paired labels differ in length: {len(a)} != {len(b)}")


def confusion_matrix(rows: Sequence[bool], cols: Sequence[bool]) -> ConfusionMatrix:
    """Confusion matrix of two paired binary labellings (rows: first labelling)."""
    _check_paired(rows, cols)
    pairs = list(zip(map(bool, rows), map(bool, cols)))
    return ConfusionMatrix(
        both_error=pairs.count((True, True)),
        row_error_col_no_error=pairs.count((True, False)),
        row_no_error_col_error=pairs.count((False, True)),
        both_no_error=pairs.count((False, False)),
    )


def _kappa_along_last_axis(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cohen's kappa of 0/1 arrays along `axis` (vectorized for the bootstrap)."""
    observed = np.mean(a == b, axis=axis)
    pa, pb = np.mean(a, axis=axis), np.mean(b, axis=axis)
    expected = pa * pb + (1 - pa) * (1 - pb)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Chance agreement of 1 (both labellings constant and equal) leaves kappa undefined.
        return np.where(expected < 1.0, (observed - expected) / (1.0 - expected), np.nan)


def agreement_rate(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Share of items on which the two labellings agree (NaN for no items)."""
    _check_paired(a, b)
    if not a:
        return math.nan
    return float(np.mean(_as_bool_array(a) == _as_bool_array(b)))


def cohens_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa for two binary labellings: (p_o - p_e) / (1 - p_e); NaN when p_e = 1."""
    _check_paired(a, b)
    if not a:
        return math.nan
    return float(_kappa_along_last_axis(_as_bool_array(a), _as_bool_array(b)))


def bootstrap_estimate(
    arrays: Sequence[Sequence[bool] | Sequence[float] | np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    confidence_level: float = 0.95,
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
    undefined = int(np.isnan(distribution).sum())
    if undefined == 0:
        se = float(result.standard_error)
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    elif undefined < len(distribution):
        # Same resamples, NaN-aware summary: resamples where the statistic is undefined are left
        # out and counted, rather than turning the whole interval into NaN.
        alpha = (1 - confidence_level) / 2
        se = float(np.nanstd(distribution, ddof=1))
        low, high = (float(q) for q in np.nanquantile(distribution, [alpha, 1 - alpha]))
    else:
        se = low = high = math.nan
    return Estimate(value, se, low, high, n, confidence_level, undefined)


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _agreement(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a == b, axis=axis)


def proportion_estimate(indicators: Sequence[bool], **kwargs: Any) -> Estimate:
    """Share of True among `indicators`, with its bootstrap SE and interval."""
    return bootstrap_estimate([_as_bool_array(indicators)], _mean, **kwargs)


def agreement_estimate(a: Sequence[bool], b: Sequence[bool], **kwargs: Any) -> Estimate:
    """Agreement rate of two paired labellings with its bootstrap SE and interval."""
    _check_paired(a, b)
    return bootstrap_estimate([_as_bool_array(a), _as_bool_array(b)], _agreement, **kwargs)


def kappa_estimate(a: Sequence[bool], b: Sequence[bool], **kwargs: Any) -> Estimate:
    """Cohen's kappa of two paired labellings with its bootstrap SE and interval."""
    _check_paired(a, b)
    return bootstrap_estimate([_as_bool_array(a), _as_bool_array(b)], _kappa_along_last_axis, **kwargs)


def analytic_proportion_se(p: float, n: int) -> float:
    """sqrt(p (1 - p) / n): the textbook standard error of a proportion, for comparison."""
    return math.sqrt(p * (1 - p) / n) if n else math.nan
