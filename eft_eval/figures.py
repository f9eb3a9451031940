"""The one figure style: the palette and the drawing backend every analysis and report figure uses.

A run or configuration drawn in the k-th colour is the same colour in an analysis's PNG and in the
report, so the eye can move between them. On the ground floor because `analysis` and `report` both
draw and neither may import the other; matplotlib loads only when a figure is drawn.
"""

from __future__ import annotations

from typing import Any

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")
"""matplotlib's tab10 colours, blue and red first: two series (a judge and the others, up and down
scaling) get the pair that reads apart best."""


def color(index: int) -> str:
    """The `index`-th colour, cycling past the end of the palette."""
    return PALETTE[index % len(PALETTE)]


def pyplot() -> Any:
    """`matplotlib.pyplot` on the Agg backend: figures are written to files, never shown, with no display."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


__all__ = ["PALETTE", "color", "pyplot"]
