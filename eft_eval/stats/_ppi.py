"""Prediction-powered inference (PPI) for a mean: a judge's scores corrected by human labels.

Angelopoulos, Bates, Fannjiang, Jordan, Zrnic, "Prediction-powered inference", Science 2023, and
the power-tuned PPI++ of Angelopoulos, Duchi, Zrnic 2023. Given human labels `Y` and the judge's
predictions `Yhat` on n labelled items, and the judge's predictions `Yhat_u` on N other items
(unlabelled), the estimate of the humans' mean over the population is

    theta = lambda * mean(Yhat_u) + mean(Y - lambda * Yhat)

with the central-limit interval theta ± z * se, se^2 = var(lambda * Yhat_u) / N + var(Y - lambda * Yhat) / n.
lambda = 1 is plain PPI; PPI++ picks the lambda that minimises se,
cov(Y, Yhat) / ((1 + n / N) * var(Yhat over all n + N items)), clipped to [0, 1], so the estimate is
never worse than the humans alone (lambda = 0) in large samples.

What it needs: the labelled items are a uniformly random subset of the same population as the
unlabelled ones (independent draws). The judge may be biased in any way; the interval stays valid.

Implemented with numpy/scipy (the `ppi-python` package pulls numba, statsmodels and gdown). The
formulas and the variances follow `ppi_py.ppi_mean_ci` (population variances, ddof=0, and the
tuned lambda of `ppi_py`'s `_calc_lam_glm`), so the numbers are the same as that package's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from eft_eval.stats._estimate import DEFAULT_CONFIDENCE_LEVEL, Estimate

PPI_METHOD = "ppi-clt"
PPI_PLUSPLUS_METHOD = "ppi++-clt"
CLASSICAL_METHOD = "clt"
DIFFERENCE_METHOD = "independent-difference-clt"


@dataclass(frozen=True)
class CorrectedMean:
    """One judge's mean three ways, and what the judge was worth in human labels."""

    judge_only: Estimate
    """The judge's mean over every judged item (labelled and unlabelled): what it says, bias included."""
    human_only: Estimate
    """The humans' mean over the labelled items, ignoring the judge."""
    ppi: Estimate
    """The prediction-powered estimate of the humans' mean over the population."""
    lam: float
    """The weight of the judge's predictions (1: plain PPI; tuned by PPI++ otherwise)."""
    n_labels: int
    n_unlabelled: int

    @property
    def n_items(self) -> int:
        return self.n_labels + self.n_unlabelled

    @property
    def effective_labels(self) -> float:
        """n * se(human only)^2 / se(PPI)^2: how many human labels alone would give PPI's precision."""
        return effective_labels(self.n_labels, self.human_only, self.ppi)


def effective_labels(n_labels: int, human_only: Estimate, ppi: Estimate) -> float:
    """`n * var_human_only / var_ppi` (variances: squared standard errors); NaN when either is undefined or 0."""
    if not (math.isfinite(human_only.standard_error) and math.isfinite(ppi.standard_error)) or ppi.standard_error == 0:
        return math.nan
    return n_labels * human_only.standard_error ** 2 / ppi.standard_error ** 2


def _z(confidence_level: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence_level / 2))


def _clt(value: float, se: float, n: int, confidence_level: float, method: str) -> Estimate:
    z = _z(confidence_level)
    return Estimate(value, se, value - z * se, value + z * se, n, confidence_level, method=method)


def _array(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: every value must be a finite number")
    return array


def classical_mean_estimate(values: Sequence[float] | np.ndarray,
                            confidence_level: float = DEFAULT_CONFIDENCE_LEVEL) -> Estimate:
    """The mean with the central-limit interval, se = std(ddof=0) / sqrt(n) (`ppi_py.classical_mean_ci`)."""
    y = _array(values, "values")
    if len(y) < 2:
        return Estimate(float(y.mean()) if len(y) else math.nan, math.nan, math.nan, math.nan, len(y),
                        confidence_level, method=CLASSICAL_METHOD)
    return _clt(float(y.mean()), float(y.std() / math.sqrt(len(y))), len(y), confidence_level, CLASSICAL_METHOD)


def tuned_lambda(labels: np.ndarray, predictions: np.ndarray, unlabelled: np.ndarray) -> float:
    """PPI++'s lambda for a mean: cov(Y, Yhat) / ((1 + n/N) var(Yhat)), clipped to [0, 1].

    No unlabelled items (N = 0) or a constant judge leave nothing to gain from the judge: 0.
    """
    n, big_n = len(labels), len(unlabelled)
    pooled = np.concatenate([predictions, unlabelled])
    if big_n == 0 or n < 2 or len(pooled) < 2:
        return 0.0
    variance = float(np.var(pooled, ddof=1))
    if variance == 0:
        return 0.0
    covariance = float(np.mean((labels - labels.mean()) * (predictions - predictions.mean())))  # ddof=0, as ppi_py
    return float(np.clip(covariance / ((1 + n / big_n) * variance), 0.0, 1.0))


def ppi_mean_estimate(
    labels: Sequence[float] | np.ndarray,
    predictions: Sequence[float] | np.ndarray,
    unlabelled: Sequence[float] | np.ndarray,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
    lam: float | None = None,
) -> CorrectedMean:
    """The judge-only, human-only and PPI estimates of a mean.

    `labels[i]` is the humans' value of labelled item i and `predictions[i]` the judge's on it;
    `unlabelled` holds the judge's values on the items without a label. `lam=None` tunes lambda
    (PPI++, method `ppi++-clt`); `lam=1` is plain PPI (`ppi-clt`).
    """
    y, yhat, yhat_u = _array(labels, "labels"), _array(predictions, "predictions"), _array(unlabelled, "unlabelled")
    if len(y) != len(yhat):
        raise ValueError(f"labels and predictions differ in length: {len(y)} != {len(yhat)}")
    if lam is not None and not 0 <= lam <= 1:
        raise ValueError(f"lambda must be between 0 and 1, got {lam}")
    n, big_n = len(y), len(yhat_u)
    judge_only = classical_mean_estimate(np.concatenate([yhat, yhat_u]), confidence_level)
    human_only = classical_mean_estimate(y, confidence_level)
    method = PPI_PLUSPLUS_METHOD if lam is None else PPI_METHOD
    weight = tuned_lambda(y, yhat, yhat_u) if lam is None else (float(lam) if big_n else 0.0)
    if n < 2:
        undefined = Estimate(math.nan, math.nan, math.nan, math.nan, n + big_n, confidence_level, method=method)
        return CorrectedMean(judge_only, human_only, undefined, weight, n, big_n)
    rectifier = y - weight * yhat
    imputed_mean = float(np.mean(weight * yhat_u)) if big_n else 0.0
    imputed_var = float(np.var(weight * yhat_u)) / big_n if big_n else 0.0
    value = imputed_mean + float(rectifier.mean())
    se = math.sqrt(imputed_var + float(np.var(rectifier)) / n)
    return CorrectedMean(judge_only, human_only, _clt(value, se, n + big_n, confidence_level, method),
                         weight, n, big_n)


def independent_difference(a: Estimate, b: Estimate) -> Estimate:
    """b - a for estimates from independent samples (two runs, each with its own random labels):
    the variances add, se = sqrt(se_a^2 + se_b^2), with the central-limit interval at a's level."""
    if a.confidence_level != b.confidence_level:
        raise ValueError(f"the estimates have different confidence levels: {a.confidence_level}, {b.confidence_level}")
    se = math.sqrt(a.standard_error ** 2 + b.standard_error ** 2)
    return _clt(b.value - a.value, se, a.n + b.n, a.confidence_level, DIFFERENCE_METHOD)


__all__ = [
    "CLASSICAL_METHOD",
    "DIFFERENCE_METHOD",
    "PPI_METHOD",
    "PPI_PLUSPLUS_METHOD",
    "CorrectedMean",
    "classical_mean_estimate",
    "effective_labels",
    "independent_difference",
    "ppi_mean_estimate",
    "tuned_lambda",
]
