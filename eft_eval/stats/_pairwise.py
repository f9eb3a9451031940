"""Pairwise comparisons: combining both orders, position inconsistency, win rates, Bradley-Terry.

An outcome is a float from the compared run's point of view: 1.0 the run wins, 0.5 a tie, 0.0
the reference (or the other model) wins. A graded verdict scale (`A>>B, A>B, A=B, B>A, B>>A`)
is mapped onto [0, 1] by the caller (e.g. 1, 0.75, 0.5, 0.25, 0), and a verdict given with the
run's response in position B is turned round to the run's view by the caller too (`1 - x`).

- `combine_orders(first, swapped, rule)`: one outcome from the two orders a pair was asked in.
- `position_inconsistency(first, swapped)`: share of pairs whose verdict changes with the order.
- `win_rate(outcomes)`: mean outcome (ties count half), bootstrap over prompts.
- `length_controlled_win_rate(outcomes, length_differences)`: AlpacaEval 2's idea, the win rate
  a logistic model of the outcome reads at zero length difference.
- `bradley_terry(comparisons, groups=...)`: strengths of several models on Arena-Hard's Elo-like
  scale, with a bootstrap over prompts and a ranking.

Every estimate is an `Estimate` (its `method` says how its interval was computed); the
bootstrap settings are those of the rest of `stats` (`n_resamples`, `seed`, `confidence_level`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats

from eft_eval.errors import EFTEvalError
from eft_eval.stats._bootstrap import block_size, bootstrap_estimate, distribution_estimate
from eft_eval.stats._estimate import (
    DEFAULT_CONFIDENCE_LEVEL,
    DEFAULT_N_RESAMPLES,
    DEFAULT_SEED,
    BootstrapSettings,
    Estimate,
)

COMBINE_RULES = ("tie", "mean", "side")
"""How `combine_orders` resolves two verdicts that differ:

- `tie`: an inconsistent pair counts as a tie (0.5), as MT-bench does; a consistent one keeps
  its verdict. Strict: with a graded scale, `A>>B` in one order and `A>B` in the other differ.
- `mean`: the mean of the two verdicts (Arena-Hard counts both orders as separate games, which
  is the same in a win rate); consistent pairs are their verdict either way.
- `side`: consistent when both verdicts are on the same side of a tie (both wins, both losses,
  or both ties); then their mean, else a tie. A graded judge that only changes how strongly it
  prefers the same response is not penalised.
"""

INCONSISTENCY_METHODS = ("bootstrap", "exact")
"""`position_inconsistency`'s interval: `bootstrap` (percentile, prompts resampled) or `exact`
(Clopper-Pearson binomial interval, standard error sqrt(p (1 - p) / n))."""

ELO_SCALE = 400.0 / math.log(10.0)
"""Natural-log strengths to Arena-Hard's Elo-like points: 400 points is a factor of 10 in odds."""
ELO_ANCHOR = 1000.0
"""The anchor model's score on the Elo-like scale."""

DEFAULT_LC_REGULARIZATION = 1e-2
DEFAULT_BT_REGULARIZATION = 1e-6
_TOLERANCE = 1e-9
"""Two outcomes closer than this are the same verdict (floats from a mapping of labels)."""


class PairwiseInputError(EFTEvalError, ValueError):
    """Bad input to a pairwise statistic: an `EFTEvalError` (one line on the command line) that
    is also a `ValueError` for library callers."""


def _outcomes(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """`values` as a float array, every one finite and in [0, 1], or an error naming the first bad one."""
    array = np.asarray(values, dtype=float).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(array) | (array < 0) | (array > 1))
    if bad.size:
        raise PairwiseInputError(f"{name}[{bad[0]}] = {float(array[bad[0]])!r}: an outcome must be in [0, 1] "
                                 "(1 the run wins, 0.5 a tie, 0 the reference wins)")
    return array


def _same_length(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.size != b.size:
        raise PairwiseInputError(f"{names} differ in length: {a.size} != {b.size}")


def _check_outcome(value: float, name: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise PairwiseInputError(f"{name} = {value!r}: an outcome must be in [0, 1]")
    return value


def combine_orders(first: float, swapped: float, rule: str = "tie") -> float:
    """One outcome from a pair asked in both orders (both already from the run's point of view).

    `first`: the verdict with the run's response in position A; `swapped`: in position B.
    Consistent verdicts give that verdict; inconsistent ones are resolved by `rule`
    (`COMBINE_RULES`: `tie`, `mean`, `side`). An unknown rule is a `ValueError` naming it.
    """
    if rule not in COMBINE_RULES:
        raise PairwiseInputError(f"unknown rule {rule!r} for combining both orders; "
                                 f"known: {', '.join(COMBINE_RULES)}")
    first, swapped = _check_outcome(first, "first"), _check_outcome(swapped, "swapped")
    if abs(first - swapped) <= _TOLERANCE:
        return first
    if rule == "mean":
        return (first + swapped) / 2
    if rule == "side" and _side(first) == _side(swapped):
        return (first + swapped) / 2
    return 0.5


def _side(outcome: float) -> int:
    """+1 a win, -1 a loss, 0 a tie, whatever the strength."""
    return 0 if abs(outcome - 0.5) <= _TOLERANCE else (1 if outcome > 0.5 else -1)


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def position_inconsistency(
    first: Sequence[float] | np.ndarray,
    swapped: Sequence[float] | np.ndarray,
    *,
    by_side: bool = False,
    method: str = "bootstrap",
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
) -> Estimate:
    """Share of pairs whose verdict changes with the order the responses were shown in.

    `first[i]` and `swapped[i]` are pair i's verdicts (run's view) with the run's response in
    position A and in position B. A pair is inconsistent when they differ; with `by_side`, only
    when they fall on different sides of a tie (a graded judge's `A>>B` against `A>B` is then
    consistent). `method`: `bootstrap` (percentile interval over pairs, `bootstrap-percentile`)
    or `exact` (Clopper-Pearson interval and the binomial standard error, `binomial-exact`).
    """
    if method not in INCONSISTENCY_METHODS:
        raise PairwiseInputError(f"unknown method {method!r} for position inconsistency; "
                                 f"known: {', '.join(INCONSISTENCY_METHODS)}")
    a, b = _outcomes(first, "first"), _outcomes(swapped, "swapped")
    _same_length(a, b, "first and swapped verdicts")
    if by_side:
        sides = np.vectorize(_side, otypes=[int])
        flips = (sides(a) != sides(b)) if a.size else np.zeros(0, bool)
    else:
        flips = np.abs(a - b) > _TOLERANCE
    indicators = flips.astype(float)
    kwargs = BootstrapSettings(n_resamples, seed, confidence_level).kwargs()
    if method == "bootstrap":
        return bootstrap_estimate([indicators], _mean, **kwargs)
    n, k = indicators.size, int(indicators.sum())
    level = kwargs["confidence_level"]
    if not n:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0, level, 0, "binomial-exact")
    p = k / n
    interval = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return Estimate(p, math.sqrt(p * (1 - p) / n), float(interval.low), float(interval.high), n, level, 0,
                    "binomial-exact")


def _paired(estimate: Estimate) -> Estimate:
    """The estimate named as `paired_difference` names its own: each prompt's outcome compares
    the run with the reference on that prompt, so resampling prompts resamples pairs."""
    return replace(estimate, method="paired-bootstrap-percentile")


def win_rate(
    outcomes: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
) -> Estimate:
    """Mean outcome over prompts (a tie counts half), with a percentile bootstrap over prompts.

    One outcome per prompt (the pair's combined verdict), so resampling prompts keeps each
    pair's two responses together: the interval is the paired one (`paired-bootstrap-percentile`).
    """
    values = _outcomes(outcomes, "outcomes")
    settings = BootstrapSettings(n_resamples, seed, confidence_level)
    return _paired(bootstrap_estimate([values], _mean, **settings.kwargs()))


# --- length-controlled win rate -----------------------------------------------------------------


def length_feature(length_differences: np.ndarray, axis: int = -1) -> np.ndarray:
    """AlpacaEval 2's length covariate: `tanh(d / sd(d))`, sd over the items (ddof=1).

    The tanh bounds how much length can explain (a run cannot buy an unbounded win rate with
    ever longer answers), and dividing by the spread makes it unit-free. With no spread (every
    difference the same, or one item) the covariate is 0: length then explains nothing the
    intercept does not, and the model's win rate is the (lightly regularised) raw one.
    """
    d = np.asarray(length_differences, dtype=float)
    if d.shape[axis] < 2:
        return np.zeros_like(d)
    sd = np.std(d, axis=axis, ddof=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, np.tanh(d / np.where(sd > 0, sd, 1.0)), 0.0)


def fit_soft_logistic(
    targets: np.ndarray, feature: np.ndarray, regularization: float = DEFAULT_LC_REGULARIZATION,
    iterations: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """(intercept, slope) maximising the Bernoulli log-likelihood of soft `targets` in [0, 1]
    under `sigmoid(intercept + slope * feature)`, minus `regularization / 2 * (intercept² + slope²)`.

    Vectorized over leading axes (one fit per row, items on the last axis). Newton's method on a
    strictly concave objective, steps clipped so the first ones cannot overshoot; the L2 penalty
    keeps both coefficients finite when the outcomes are separated (all wins, all losses).
    """
    y = np.asarray(targets, dtype=float)
    x = np.asarray(feature, dtype=float)
    shape = y.shape[:-1]
    b0, b1 = np.zeros(shape), np.zeros(shape)
    for _ in range(iterations):
        eta = b0[..., None] + b1[..., None] * x
        p = _sigmoid(eta)
        w = p * (1 - p)
        r = y - p
        g0 = r.sum(axis=-1) - regularization * b0
        g1 = (r * x).sum(axis=-1) - regularization * b1
        h00 = w.sum(axis=-1) + regularization
        h01 = (w * x).sum(axis=-1)
        h11 = (w * x * x).sum(axis=-1) + regularization
        det = h00 * h11 - h01 * h01
        step0 = np.clip((h11 * g0 - h01 * g1) / det, -2.0, 2.0)
        step1 = np.clip((h00 * g1 - h01 * g0) / det, -2.0, 2.0)
        b0, b1 = b0 + step0, b1 + step1
        if max(float(np.max(np.abs(step0), initial=0.0)), float(np.max(np.abs(step1), initial=0.0))) < 1e-12:
            break
    return b0, b1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float))))


def _lc_statistic(regularization: float) -> Any:
    def statistic(outcomes: np.ndarray, differences: np.ndarray, axis: int = -1) -> np.ndarray:
        intercept, _ = fit_soft_logistic(outcomes, length_feature(differences, axis=-1), regularization)
        return _sigmoid(intercept)
    return statistic


def length_controlled_win_rate(
    outcomes: Sequence[float] | np.ndarray,
    length_differences: Sequence[float] | np.ndarray,
    *,
    regularization: float = DEFAULT_LC_REGULARIZATION,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
) -> Estimate:
    """The win rate a logistic model of the outcome reads at zero length difference.

    AlpacaEval 2's length control, with one run and one reference: `P(run wins) =
    sigmoid(intercept + slope * tanh(d / sd(d)))`, `d` the run's length minus the reference's
    (tokens) on each prompt (`length_feature`), fitted to the outcomes as soft targets (a tie
    is half a win). The length-controlled win rate is `sigmoid(intercept)`: the rate at which
    the run would win were its answers as long as the reference's. (AlpacaEval's model also has
    an instruction-difficulty term shared across many models; with one run against one reference
    on each prompt it reduces to this.) `regularization`: an L2
    penalty on both coefficients (default 0.01, against n items' worth of log-likelihood), so
    all wins or all losses give a finite value near 1 or 0. Percentile bootstrap over prompts
    (each resample refits, with its own sd; `paired-bootstrap-percentile`).
    """
    y = _outcomes(outcomes, "outcomes")
    d = np.asarray(length_differences, dtype=float).reshape(-1)
    _same_length(y, d, "outcomes and length_differences")
    bad = np.flatnonzero(~np.isfinite(d))
    if bad.size:
        raise PairwiseInputError(f"length_differences[{bad[0]}] = {float(d[bad[0]])!r} is not a finite number")
    if not (math.isfinite(regularization) and regularization >= 0):
        raise PairwiseInputError(f"regularization = {regularization!r} must be a finite number >= 0")
    return _paired(bootstrap_estimate([y, d], _lc_statistic(regularization),
                                      **BootstrapSettings(n_resamples, seed, confidence_level).kwargs()))


# --- Bradley-Terry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BradleyTerryResult:
    """Bradley-Terry scores of several models, with bootstrap intervals and a ranking."""

    scores: dict[str, Estimate]
    """Per model, its score: `ELO_ANCHOR + ELO_SCALE * (strength - anchor's strength)` on the
    `elo` scale (Arena-Hard's: +400 is ten times the odds), the natural-log strength difference
    on the `logit` scale. The anchor's own score is exact (SE 0)."""
    win_rates: dict[str, Estimate]
    """Per model, the modelled probability of beating the anchor, `sigmoid(strength - anchor's)`
    (Arena-Hard's win rate against its baseline), with the same bootstrap."""
    ranking: tuple[str, ...]
    """Model names, best first (ties in score by name)."""
    anchor: str
    scale: str
    n_comparisons: int
    n_groups: int
    """Prompts resampled by the bootstrap (comparisons when no groups were given)."""
    regularization: float
    method: str = "bootstrap-percentile"
    strengths: dict[str, float] = field(default_factory=dict)
    """Fitted natural-log strengths, anchor at 0 (for checks against other fits)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": {name: estimate.to_dict() for name, estimate in self.scores.items()},
            "win_rates": {name: estimate.to_dict() for name, estimate in self.win_rates.items()},
            "ranking": list(self.ranking),
            "anchor": self.anchor,
            "scale": self.scale,
            "n_comparisons": self.n_comparisons,
            "n_groups": self.n_groups,
            "regularization": self.regularization,
            "method": self.method,
        }


BT_SCALES = ("elo", "logit")


def fit_bradley_terry(
    first: np.ndarray, second: np.ndarray, outcomes: np.ndarray, n_models: int,
    weights: np.ndarray | None = None, regularization: float = DEFAULT_BT_REGULARIZATION,
    iterations: int = 200,
) -> np.ndarray:
    """Natural-log strengths (mean 0) maximising the weighted Bradley-Terry log-likelihood.

    `sum w * [y log sigmoid(s_i - s_j) + (1 - y) log sigmoid(s_j - s_i)]` over comparisons of
    model `first` against model `second` with outcome `y` (ties 0.5: half a win each way), minus
    `regularization / 2 * sum s²`. The likelihood only sees differences; the penalty fixes the
    mean at 0 and keeps a model that won (or lost) everything finite. `weights` may have
    leading axes (one fit per row: the bootstrap's counts of each comparison). Newton's method,
    steps clipped. With `regularization=0` the mean is fixed by a pseudo-inverse step instead,
    which is the plain maximum likelihood fit when every model is connected.
    """
    first, second = np.asarray(first, dtype=int), np.asarray(second, dtype=int)
    outcomes = np.asarray(outcomes, dtype=float)
    m = first.size
    w = np.ones((1, m)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    # The likelihood depends on the data only through each pair of models' total weight and
    # weighted wins: fit on those (a few pairs) instead of every comparison (thousands).
    swap = first > second
    low, high = np.where(swap, second, first), np.where(swap, first, second)
    oriented = np.where(swap, 1.0 - outcomes, outcomes)
    pairs, pair_of = np.unique(low * n_models + high, return_inverse=True)
    onehot = np.zeros((m, pairs.size))
    onehot[np.arange(m), pair_of.reshape(-1)] = 1.0
    totals, wins = w @ onehot, (w * oriented) @ onehot  # (B, P)
    design = np.zeros((pairs.size, n_models))
    design[np.arange(pairs.size), pairs // n_models] += 1.0
    design[np.arange(pairs.size), pairs % n_models] -= 1.0
    s = np.zeros((w.shape[0], n_models))
    eye = np.eye(n_models)
    centre = np.full((n_models, n_models), 1.0 / n_models)
    for _ in range(iterations):
        p = _sigmoid(s @ design.T)  # (B, P)
        gradient = (wins - totals * p) @ design - regularization * s
        curvature = totals * p * (1 - p)
        hessian = (curvature[:, :, None] * design).transpose(0, 2, 1) @ design + regularization * eye
        if regularization == 0:
            # The likelihood is flat along the all-ones direction; adding its projection makes the
            # Hessian invertible without moving the fit (the gradient has no component along it).
            # The jitter covers a model absent from a bootstrap resample (its step is then 0).
            hessian = hessian + centre + 1e-12 * eye
        step = np.clip(np.linalg.solve(hessian, gradient[..., None])[..., 0], -2.0, 2.0)
        s = s + step
        if float(np.max(np.abs(step), initial=0.0)) < 1e-11:
            break
    return s - s.mean(axis=1, keepdims=True) if regularization == 0 else s


def _group_index(groups: Sequence[Hashable] | None, m: int) -> tuple[np.ndarray, int]:
    if groups is None:
        return np.arange(m), m
    if len(groups) != m:
        raise PairwiseInputError(f"groups and comparisons differ in length: {len(groups)} != {m}")
    index: dict[Hashable, int] = {}
    codes = np.array([index.setdefault(g, len(index)) for g in groups], dtype=int)
    return codes, len(index)


def _group_count_blocks(
    rng: np.random.Generator, n_groups: int, n_resamples: int, width: int,
) -> Iterator[np.ndarray]:
    """How often each group is drawn in each resample (rows of `n_groups` counts), in blocks."""
    step = block_size(max(n_groups, width))
    for start in range(0, n_resamples, step):
        rows = min(step, n_resamples - start)
        draws = rng.integers(0, n_groups, size=(rows, n_groups))
        offsets = (draws + n_groups * np.arange(rows)[:, None]).ravel()
        yield np.bincount(offsets, minlength=rows * n_groups).reshape(rows, n_groups).astype(float)


def bradley_terry(
    comparisons: Sequence[tuple[str, str, float]],
    *,
    groups: Sequence[Hashable] | None = None,
    anchor: str | None = None,
    scale: str = "elo",
    regularization: float = DEFAULT_BT_REGULARIZATION,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
) -> BradleyTerryResult:
    """Bradley-Terry scores of the models in `comparisons`, as Arena-Hard reports them.

    Each comparison is `(model_i, model_j, outcome of i against j)`, outcome in [0, 1] (ties
    0.5). Strengths are the maximum likelihood fit (`fit_bradley_terry`, a tiny L2 penalty,
    `regularization`, so a model that won everything stays finite); scores are anchored at
    `anchor` (default: the first model named, e.g. pass the reference) and on the `elo` scale
    (`ELO_ANCHOR + ELO_SCALE * difference`) or the `logit` one (the difference itself).
    Intervals: percentile bootstrap resampling `groups` (one id per comparison, e.g. the prompt
    id, so both orders and every run's comparison on a prompt move together; default: each
    comparison on its own). A model absent from a resample has no score there: that resample is
    left out of its interval and counted in `undefined_resamples`.
    """
    if scale not in BT_SCALES:
        raise PairwiseInputError(f"unknown scale {scale!r} for Bradley-Terry scores; known: {', '.join(BT_SCALES)}")
    if not (math.isfinite(regularization) and regularization >= 0):
        raise PairwiseInputError(f"regularization = {regularization!r} must be a finite number >= 0")
    kwargs = BootstrapSettings(n_resamples, seed, confidence_level).kwargs()
    names: dict[str, int] = {}
    first, second, outcomes = [], [], []
    for position, item in enumerate(comparisons):
        if len(item) != 3:
            raise PairwiseInputError(f"comparisons[{position}] = {item!r}: expected (model_i, model_j, outcome)")
        a, b, outcome = item
        if str(a) == str(b):
            raise PairwiseInputError(f"comparisons[{position}] compares {a!r} with itself")
        first.append(names.setdefault(str(a), len(names)))
        second.append(names.setdefault(str(b), len(names)))
        outcomes.append(_check_outcome(outcome, f"comparisons[{position}] outcome"))
    if not names:
        raise PairwiseInputError("bradley_terry: no comparisons")
    anchor = next(iter(names)) if anchor is None else str(anchor)
    if anchor not in names:
        raise PairwiseInputError(f"anchor {anchor!r} is not one of the compared models: {', '.join(names)}")
    i, j, y = np.array(first), np.array(second), np.array(outcomes)
    k, a_index, m = len(names), names[anchor], len(outcomes)
    codes, n_groups = _group_index(groups, m)

    strengths = fit_bradley_terry(i, j, y, k, regularization=regularization)[0]
    relative = strengths - strengths[a_index]

    distribution = np.full((kwargs["n_resamples"], k), np.nan)
    if n_groups >= 2:
        rng = np.random.default_rng(kwargs["seed"])
        row = 0
        for counts in _group_count_blocks(rng, n_groups, kwargs["n_resamples"], m * k):
            weights = counts[:, codes]  # (rows, m): each comparison counted as often as its prompt
            fitted = fit_bradley_terry(i, j, y, k, weights=weights, regularization=regularization)
            present = np.zeros((weights.shape[0], k), dtype=bool)
            for column in range(k):
                touches = (i == column) | (j == column)
                present[:, column] = weights[:, touches].sum(axis=1) > 0
            fitted = fitted - fitted[:, [a_index]]
            fitted[~present] = np.nan
            fitted[~present[:, a_index]] = np.nan
            distribution[row:row + fitted.shape[0]] = fitted
            row += fitted.shape[0]

    level = kwargs["confidence_level"]
    method = "grouped-bootstrap-percentile" if groups is not None else "bootstrap-percentile"
    to_scale = (lambda x: ELO_ANCHOR + ELO_SCALE * x) if scale == "elo" else (lambda x: x)
    scores: dict[str, Estimate] = {}
    win_rates: dict[str, Estimate] = {}
    for name, column in names.items():
        n_involved = int(((i == column) | (j == column)).sum())
        if column == a_index:
            exact_score, exact_rate = float(to_scale(0.0)), 0.5
            scores[name] = Estimate(exact_score, 0.0, exact_score, exact_score, n_involved, level, 0, method)
            win_rates[name] = Estimate(exact_rate, 0.0, exact_rate, exact_rate, n_involved, level, 0, method)
            continue
        column_values = distribution[:, column]
        scores[name] = distribution_estimate(float(to_scale(relative[column])), to_scale(column_values),
                                             n_involved, level, method)
        win_rates[name] = distribution_estimate(float(_sigmoid(relative[column])), _sigmoid(column_values),
                                                n_involved, level, method)
    ranking = tuple(sorted(names, key=lambda name: (-scores[name].value, name)))
    return BradleyTerryResult(scores, win_rates, ranking, anchor, scale, m, n_groups, regularization, method,
                              {name: float(relative[column]) for name, column in names.items()})
