"""Aggregations: a small registry of functions reducing a list of scores to one number.

A judge's YAML `aggregation` field names one (`mean`, the default; `median`; `majority` for labels;
`proportion_at_least` with a `threshold`); per-judge summaries report it as `aggregate`, and
judging a response K times reduces the K scores with it. Register another with the decorator:

    @register_aggregation("trimmed_mean")
    def trimmed_mean(scores: Sequence[float], cut: float = 0.1) -> float: ...

Every aggregation returns NaN for no scores (never 0: a missing score is not a bad score), and
for scores or a result that are not finite numbers (an infinite score read from a file, an
overflow): undefined, never an exception that would keep every other result from being written.
"""

from __future__ import annotations

import inspect
import math
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Aggregation = Callable[[Sequence[float]], float]
"""What `get_aggregation` returns: scores in, one number out (NaN when undefined)."""

_REGISTRY: dict[str, Callable[..., float]] = {}


def register_aggregation(name: str) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Decorator adding `function(scores, **params) -> float` to the registry under `name`."""
    def decorate(function: Callable[..., float]) -> Callable[..., float]:
        _REGISTRY[name] = function
        return function
    return decorate


def aggregation_names() -> list[str]:
    return sorted(_REGISTRY)


def get_aggregation(name: str, params: Mapping[str, Any] | None = None) -> Aggregation:
    """The aggregation `name` with its parameters bound: `get_aggregation("mean")([1, 2]) == 1.5`.

    Raises ValueError with one readable line for an unknown name or wrong parameters, so a judge
    file is checked when it is loaded rather than after judging.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown aggregation {name!r} (known: {', '.join(aggregation_names())})")
    function = _REGISTRY[name]
    bound = dict(params or {})
    signature = inspect.signature(function)
    try:
        signature.bind([], **bound)
    except TypeError as error:
        wanted = [p for p in list(signature.parameters)[1:]]
        raise ValueError(f"aggregation {name!r} takes parameters ({', '.join(wanted) or 'none'}): {error}") from None
    for key, value in bound.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"aggregation {name!r}: parameter {key} must be a number, got {value!r}")  # noqa: TRY004
        if not is_finite(value):  # a .nan threshold would make every comparison false
            raise ValueError(f"aggregation {name!r}: parameter {key} must be a finite number, got {value!r}")

    def aggregate(scores: Sequence[float]) -> float:
        if not len(scores) or not all(is_finite(score) for score in scores):
            return math.nan
        try:
            result = float(function(scores, **bound))
        except OverflowError:
            return math.nan
        return result if math.isfinite(result) else math.nan

    aggregate.__name__ = name
    return aggregate


def is_finite(value: float) -> bool:
    """`math.isfinite` that says False, not OverflowError, for an int too large for a float."""
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


@register_aggregation("mean")
def mean(scores: Sequence[float]) -> float:
    try:
        return math.fsum(scores) / len(scores)
    except OverflowError:  # the sum overflows, the mean of finite numbers never does
        return math.fsum(score / len(scores) for score in scores)


@register_aggregation("median")
def median(scores: Sequence[float]) -> float:
    middle = float(statistics.median(scores))
    if math.isinf(middle):  # (a + b) / 2 of two huge middle scores overflowed; a / 2 + b / 2 does not
        ordered = sorted(scores)
        middle = ordered[(len(ordered) - 1) // 2] / 2 + ordered[len(ordered) // 2] / 2
    return middle


@register_aggregation("majority")
def majority(scores: Sequence[float]) -> float:
    """The most common value (for labels, e.g. 0/1); NaN on a tie, which is no majority."""
    counts = Counter(float(s) for s in scores).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return math.nan
    return counts[0][0]


@register_aggregation("proportion_at_least")
def proportion_at_least(scores: Sequence[float], threshold: float) -> float:
    """Share of scores >= `threshold` (e.g. factuality with threshold 1: share with any error)."""
    return sum(1 for s in scores if s >= threshold) / len(scores)
