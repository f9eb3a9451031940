"""The Pareto set of points scored on two judges, each with its own direction.

A point is on the frontier when no other point is at least as good on both judges and strictly
better on one. Identical points do not dominate each other, so ties stay on the frontier together.
`pareto_probability` repeats this on paired bootstrap resamples of the prompts: the share of
resamples in which a point is on the frontier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eft_eval.stats._bootstrap import paired_mean_blocks
from eft_eval.stats._estimate import BootstrapSettings


def pareto_mask(x: np.ndarray, y: np.ndarray, x_higher_is_better: bool, y_higher_is_better: bool) -> np.ndarray:
    """Boolean mask of the non-dominated points along the last axis (any leading batch axes)."""
    gx = np.asarray(x, float) * (1 if x_higher_is_better else -1)
    gy = np.asarray(y, float) * (1 if y_higher_is_better else -1)
    # dominates[..., j, i]: point j is at least as good as i on both and strictly better on one.
    xj, xi = gx[..., :, None], gx[..., None, :]
    yj, yi = gy[..., :, None], gy[..., None, :]
    dominates = (xj >= xi) & (yj >= yi) & ((xj > xi) | (yj > yi))
    return np.asarray(~dominates.any(axis=-2))


def pareto_set(points: Sequence[tuple[float, float]], x_higher_is_better: bool, y_higher_is_better: bool) -> list[bool]:
    """For each (x, y) point, whether it is on the Pareto frontier."""
    if not points:
        return []
    array = np.asarray(points, float)
    return [bool(v) for v in pareto_mask(array[:, 0], array[:, 1], x_higher_is_better, y_higher_is_better)]


def pareto_probability(
    x_scores: np.ndarray,
    y_scores: np.ndarray,
    x_higher_is_better: bool,
    y_higher_is_better: bool,
    settings: BootstrapSettings | None = None,
) -> np.ndarray:
    """Share of paired bootstrap resamples in which each point is on the frontier.

    `x_scores`, `y_scores`: points x prompts, the same prompts (columns) for every point and both
    judges, so one draw of prompt ids resamples all of them jointly.
    """
    settings = settings or BootstrapSettings()
    points, n = np.asarray(x_scores).shape
    if n < 2:
        return np.full(points, np.nan)
    both = np.vstack([np.asarray(x_scores, float), np.asarray(y_scores, float)])
    on_frontier = np.zeros(points)
    # Counted block by block: a block's dominance test holds points x points values per resample.
    for means in paired_mean_blocks(both, n_resamples=settings.n_resamples, seed=settings.seed, width=points * points):
        on_frontier += pareto_mask(means[:, :points], means[:, points:],
                                   x_higher_is_better, y_higher_is_better).sum(axis=0)
    return on_frontier / settings.n_resamples
