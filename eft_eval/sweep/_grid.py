"""A study's `grid:`: each variable's values, counted before anything is expanded.

A range (`{from: 0, to: 1, step: 0.1}`) is arithmetic: its size is known without listing it, so a
typo such as `step: 1e-9` (a billion runs) is refused in one line instead of filling memory while
`sweep --list` or `eft-eval list studies` builds every point. The grid's size is the product of its
variables' sizes; above `max_points` (DEFAULT_MAX_POINTS unless `--max-points` says otherwise) the
study is refused before any point is built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import parse_number

DEFAULT_MAX_POINTS = 100_000
"""The most grid points a study may expand to unless `--max-points` raises it."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RANGE_KEYS = {"from", "to", "step"}
_DECIMALS = 10
"""Range values are rounded to this many decimals (so 0.1 * 3 is 0.3, as a user reads it)."""
_FINEST_STEP = 10.0 ** -_DECIMALS
# Float steps land a hair below `to` ((0.3 - 0) / 0.1 = 2.9999999999999996): count them as reaching
# it, relative to the span so that a billion tiny steps are counted as exactly as ten.
_SLACK = 1e-9

Bad = Callable[[str, str], EFTEvalError]


@dataclass(frozen=True)
class Axis:
    """One grid variable: either listed values (label -> value) or an arithmetic range."""

    name: str
    listed: dict[str, Any] | None = None
    start: float = 0.0
    step: float = 1.0
    count: int = 0
    """Number of values (of the range, or of `listed`)."""

    def values(self) -> dict[str, Any]:
        """Label -> value; a range is expanded here, only after the whole grid was counted."""
        if self.listed is not None:
            return self.listed
        return {text(value): value for value in (_tidy(self.start + i * self.step) for i in range(self.count))}

    def describe(self) -> str:
        """The axis as `eft-eval list studies` shows it, without listing a range's values."""
        if self.listed is not None:
            return f"{self.name}: {self.count}"
        return f"{self.name}: {self.count} (from {text(self.start)} step {text(self.step)})"


def parse_axes(grid: dict[str, Any], bad: Bad) -> list[Axis]:
    """Every grid variable as an `Axis`, checked and counted; nothing is expanded yet."""
    axes = [parse_axis(name, values, bad) for name, values in grid.items()]
    if not axes:
        raise bad("grid", "names no variable")
    return axes


def parse_axis(name: str, values: Any, bad: Bad) -> Axis:
    """A list (labels from the values), `{label: value}` or `{from, to, step}`."""
    if not _NAME.fullmatch(name):
        raise bad(f"grid.{name}", "must be a name of letters, digits and '_' (it is a {placeholder})")
    if isinstance(values, dict) and values and set(values) <= _RANGE_KEYS:
        return _range_axis(name, values, bad)
    if isinstance(values, list):
        if not values:
            raise bad(f"grid.{name}", "has no values")
        labelled = {text(value): value for value in values}
        if len(labelled) != len(values):
            raise bad(f"grid.{name}", "lists a value twice")
        return Axis(name, listed=labelled, count=len(labelled))
    if isinstance(values, dict) and values:
        return Axis(name, listed={str(label): value for label, value in values.items()}, count=len(values))
    raise bad(f"grid.{name}", "must be a list of values, a mapping of label: value, or {from, to, step}")


def _range_axis(name: str, values: dict[str, Any], bad: Bad) -> Axis:
    key = f"grid.{name}"
    if set(values) != _RANGE_KEYS:
        raise bad(key, "range needs from, to and step")
    start, stop, step = (_bound(values[part], f"{key}.{part}", bad) for part in ("from", "to", "step"))
    if step <= 0:
        raise bad(key, f"range step {text(step)} must be positive (list the values for a descending grid)")
    if step < _FINEST_STEP:
        raise bad(key, f"range step {text(step)} is finer than grid values are kept ({_DECIMALS} decimal places)")
    if stop < start:
        raise bad(key, f"range goes from {text(start)} away from to {text(stop)} with step {text(step)}: "
                  "give from <= to")
    span = (stop - start) / step
    if not math.isfinite(span):  # e.g. from -1e308 to 1e308
        raise bad(key, f"range from {text(start)} to {text(stop)} step {text(step)} has too many values to count")
    return Axis(name, start=start, step=step, count=math.floor(span + max(_SLACK, span * _SLACK)) + 1)


def _bound(value: Any, key: str, bad: Bad) -> float:
    # YAML 1.1 reads `1e-9` (no dot) as text; parse_number takes it as the number it looks like
    # and refuses nan/inf, which would make the count meaningless.
    try:
        return float(parse_number(value, key, "study"))
    except EFTEvalError:
        raise bad(key, f"is {value!r}: the range needs finite numbers from, to and step") from None


def grid_size(axes: list[Axis]) -> int:
    """The number of grid points: the product of the axes' sizes (exact: Python integers)."""
    return math.prod(axis.count for axis in axes)


def check_size(axes: list[Axis], max_points: int, path: Path) -> int:
    """The grid's size, or one line naming the file and the largest variable when it is over the limit."""
    size = grid_size(axes)
    if size > max_points:
        largest = max(axes, key=lambda axis: axis.count)
        raise EFTEvalError(
            f"{path}: grid.{largest.name} has {largest.count:,} values, so the grid has {size:,} points, over "
            f"the limit of {max_points:,}: use a coarser step or fewer values (or raise the limit with --max-points)"
        )
    return size


def text(value: Any) -> str:
    """A grid value as a label or placeholder text: `0.1` and `1`, as the study wrote them.

    `:g` keeps six digits, which would label 1.000001 as `1` and put the rounded weight in the
    spec; a number `:g` cannot show exactly is written in full (`repr`, the shortest exact text).
    """
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return "none" if value is None else str(value)


def _tidy(value: float) -> float:
    return round(value, _DECIMALS)


__all__ = ["DEFAULT_MAX_POINTS", "Axis", "check_size", "grid_size", "parse_axes", "parse_axis", "text"]
