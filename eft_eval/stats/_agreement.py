"""Agreement between two labellings of the same items, with bootstrap standard errors.

One implementation for the human study (judge versus people, people versus expert gold) and
for judge versus judge (`eft-eval analyze agreement`). Labels are booleans ("any factual
error"); every function takes plain sequences so it can be tested on hand-made data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from eft_eval.stats._bootstrap import bootstrap_estimate
from eft_eval.stats._estimate import Estimate


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


def _check_paired(a: Sequence[Any] | np.ndarray, b: Sequence[Any] | np.ndarray) -> None:
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


def _spearman_along_last_axis(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho (Pearson correlation of average ranks) along `axis`, vectorized."""
    ra, rb = stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis)
    ra = ra - ra.mean(axis=axis, keepdims=True)
    rb = rb - rb.mean(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A constant labelling has no ranks to correlate: undefined, not 0.
        return np.asarray(np.sum(ra * rb, axis=axis) / np.sqrt(np.sum(ra * ra, axis=axis) * np.sum(rb * rb, axis=axis)))


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


def spearman_estimate(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, **kwargs: Any) -> Estimate:
    """Spearman's rank correlation of two paired score lists with its bootstrap SE and interval."""
    _check_paired(a, b)
    return bootstrap_estimate([np.asarray(a, dtype=float), np.asarray(b, dtype=float)],
                              _spearman_along_last_axis, **kwargs)


def analytic_proportion_se(p: float, n: int) -> float:
    """sqrt(p (1 - p) / n): the textbook standard error of a proportion, for comparison."""
    return math.sqrt(p * (1 - p) / n) if n else math.nan

