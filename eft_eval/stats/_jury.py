"""A jury of judge models: each model's estimate, and their agreement (Krippendorff's alpha).

Alpha is the `krippendorff` package's, on the models x responses matrix of scores (NaN where a
model did not score). Its interval is a bootstrap over responses; each resample reweights the
responses, and alpha of a reweighted matrix is computed here in closed form (interval) or from the
coincidence matrix (nominal, ordinal) for all resamples at once: the package recomputes its
coincidence matrix over every distinct value per call, minutes for a thousand resamples of a few
hundred continuous scores. The tests check both give the same alpha.

The level of measurement follows the judge's score: `nominal` for a 0/1 integer score (a yes/no
judge), `ordinal` for other integer scores (a count of errors, a 1-10 scale), `interval` for
continuous numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from eft_eval.stats._bootstrap import distribution_estimate
from eft_eval.stats._estimate import DEFAULT_CONFIDENCE_LEVEL, DEFAULT_SEED, Estimate, checked_bootstrap

ALPHA_LEVELS = ("nominal", "ordinal", "interval")
"""Krippendorff's levels of measurement used here: how far apart two different scores are."""

ALPHA_N_RESAMPLES = 1000
"""Resamples of a jury's alpha in results.json: a thousand fix a 95% percentile interval to about
a hundredth, and cost well under a second."""


def alpha_level(score: Any) -> str:
    """The level of measurement of a judge's scores (`JudgeSpec.score`, or None: interval)."""
    if getattr(score, "kind", None) != "integer":
        return "interval"
    return "nominal" if getattr(score, "min", None) == 0 and getattr(score, "max", None) == 1 else "ordinal"


LIBRARY_MAX_VALUES = 20_000_000
"""The package holds an items x values x values array: beyond this many floats (160 MB; e.g. 300
responses with 250 distinct continuous scores) alpha is computed here, by the same formula."""


def krippendorff_alpha(matrix: Sequence[Sequence[float]] | np.ndarray, level: str) -> float:
    """Krippendorff's alpha of a raters x items matrix (NaN: not rated), by the `krippendorff`
    package (or `weighted_alpha` where the package would need too much memory); NaN where it is
    undefined (one value only, or no item rated twice)."""
    import krippendorff

    data = _checked(matrix, level)
    pairable = np.sum(~np.isnan(data), axis=0) >= 2
    if not pairable.any() or len(np.unique(data[:, pairable])) < 2:
        return math.nan
    if data.shape[1] * len(np.unique(data[~np.isnan(data)])) ** 2 > LIBRARY_MAX_VALUES:
        return float(weighted_alpha(data, level, np.ones((1, data.shape[1])))[0])
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=cast(Any, level)))


def krippendorff_alpha_estimate(matrix: Sequence[Sequence[float]] | np.ndarray, level: str, *,
                                n_resamples: int = ALPHA_N_RESAMPLES, seed: int = DEFAULT_SEED,
                                confidence_level: float = DEFAULT_CONFIDENCE_LEVEL) -> Estimate:
    """Krippendorff's alpha with a bootstrap over items (columns drawn with replacement; percentile
    interval; resamples where alpha is undefined are left out and counted)."""
    n_resamples, seed, confidence_level = checked_bootstrap(n_resamples, seed, confidence_level)
    data = _checked(matrix, level)
    value = krippendorff_alpha(data, level)
    n = data.shape[1]
    if n < 2 or math.isnan(value):
        return Estimate(value, math.nan, math.nan, math.nan, n, confidence_level, 0, "bootstrap-percentile")
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float)  # items drawn, per resample
    return distribution_estimate(value, weighted_alpha(data, level, weights), n, confidence_level,
                                 method="bootstrap-percentile")


def weighted_alpha(matrix: np.ndarray, level: str, weights: np.ndarray) -> np.ndarray:
    """Alpha of the matrix with item u counted `weights[b, u]` times, for each row b of `weights`
    (a bootstrap resample): 1 - (n - 1) * sum(o * d) / sum(n_c n_k d), o the coincidence matrix."""
    data = np.asarray(matrix, dtype=float)
    keep = np.sum(~np.isnan(data), axis=0) >= 2  # only items rated twice hold pairable values
    data, weights = data[:, keep], np.atleast_2d(weights)[:, keep]
    rated = ~np.isnan(data)
    m = rated.sum(axis=0).astype(float)  # values per item
    with np.errstate(invalid="ignore", divide="ignore"):
        if level == "interval":  # squared differences: sums of squares, no coincidence matrix
            filled = np.where(rated, data, 0.0)
            s1, s2 = filled.sum(axis=0), (filled**2).sum(axis=0)
            within = s2 - s1**2 / m  # sum of squares about each item's mean
            n = weights @ m
            observed = weights @ (2 * m * within / (m - 1)) / n
            total = weights @ s2 - (weights @ s1) ** 2 / n
            expected = 2 * total / (n - 1)
            return np.asarray(1 - observed / expected, dtype=float)
        domain = np.unique(data[rated])
        counts = np.stack([(data == v).sum(axis=0) for v in domain], axis=1).astype(float)  # items x values
        out = np.empty(len(weights))
        for b, w in enumerate(weights):
            scaled = counts * (w / (m - 1))[:, None]
            o = scaled.T @ counts - np.diag(scaled.sum(axis=0))
            n_c = o.sum(axis=0)
            n = n_c.sum()
            d = _distances(domain, n_c, level)
            out[b] = 1 - (n - 1) * np.sum(o * d) / np.sum(np.outer(n_c, n_c) * d)
        return out


def _distances(domain: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    if level == "nominal":
        return 1.0 - np.eye(len(domain))
    cumulative = np.concatenate([[0.0], np.cumsum(n_c)])  # ordinal: the counts between two ranks
    i, k = np.meshgrid(np.arange(len(domain)), np.arange(len(domain)), indexing="ij")
    low, high = np.minimum(i, k), np.maximum(i, k)
    return np.asarray((cumulative[high + 1] - cumulative[low] - (n_c[i] + n_c[k]) / 2) ** 2, dtype=float)


def _checked(matrix: Sequence[Sequence[float]] | np.ndarray, level: str) -> np.ndarray:
    if level not in ALPHA_LEVELS:
        raise ValueError(f"unknown level of measurement {level!r} (known: {', '.join(ALPHA_LEVELS)})")
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError(f"alpha needs a raters x items matrix of at least two raters, got shape {data.shape}")
    return data


def jury_matrix(judgments: Sequence[Mapping[str, Any]], models: Sequence[str]) -> np.ndarray:
    """models x responses: each model's score of each response (NaN where it did not score)."""
    matrix = np.full((len(models), len(judgments)), np.nan)
    for column, judgment in enumerate(judgments):
        for row, model in enumerate(models):
            own = (judgment.get("models") or {}).get(model)
            if own is not None and own.get("status") == "scored" and own.get("score") is not None:
                matrix[row, column] = float(own["score"])
    return matrix


__all__ = ["ALPHA_LEVELS", "ALPHA_N_RESAMPLES", "alpha_level", "jury_matrix", "krippendorff_alpha",
           "krippendorff_alpha_estimate", "weighted_alpha"]
