"""The one figure style: the palette and the drawing backend every analysis and report figure uses.

A run or configuration drawn in the k-th colour is the same colour in an analysis's PNG and in the
report, so the eye can move between them. On the ground floor because `analysis` and `report` both
draw and neither may import the other; matplotlib loads only when a figure is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")
"""matplotlib's tab10 colours, blue and red first: two series (a judge and the others, up and down
scaling) get the pair that reads apart best."""


def color(index: int) -> str:
    """The `index`-th colour, cycling past the end of the palette."""
    return PALETTE[index % len(PALETTE)]


def label_slots(points: Sequence[tuple[float, float]], x_near: float = 0.12, y_near: float = 0.05) -> list[int]:
    """For labelled points, each label's line below its usual place (0: the usual place) so that the
    labels of points at (nearly) the same place are stacked instead of printed over each other.

    Two points are near when they are closer than `x_near` of the points' x span and `y_near` of
    their y span (a short label's width and height on a default figure); a label takes the first
    line no earlier near point's label holds."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x_gap = x_near * ((max(xs) - min(xs)) if xs else 0.0)
    y_gap = y_near * ((max(ys) - min(ys)) if ys else 0.0)
    slots: list[int] = []
    for index, (x, y) in enumerate(points):
        taken = {slots[j] for j in range(index)
                 if abs(points[j][0] - x) <= x_gap and abs(points[j][1] - y) <= y_gap}
        slots.append(next(slot for slot in range(len(taken) + 1) if slot not in taken))
    return slots


def label_offsets(points: Sequence[tuple[float, float]], line: float, gap: float = 5.0) -> list[tuple[float, str]]:
    """Where each point's label goes, as (vertical offset in typographic points, vertical alignment):
    labels of near points (`label_slots`) are stacked one `line` apart, upwards from points in the
    lower half of the plot and downwards from points in the upper half, so a stack stays inside the
    axes."""
    ys = [y for _, y in points]
    middle = (max(ys) + min(ys)) / 2 if ys else 0.0
    return [(gap + line * slot, "bottom") if y <= middle else (-(gap + line * slot), "top")
            for (_, y), slot in zip(points, label_slots(points))]


def pyplot() -> Any:
    """`matplotlib.pyplot` on the Agg backend: figures are written to files, never shown, with no display."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


__all__ = ["PALETTE", "color", "label_offsets", "label_slots", "pyplot"]
