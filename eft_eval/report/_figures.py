"""The report's figures: matplotlib, drawn to SVG text that the page inlines.

Points and bars that stand for a run carry an SVG id `<figure>__run<index>` (matplotlib writes an
artist's `gid` as the id of its `<g>`), which is how a click on a frontier point or a scaling bar
finds the run to filter the sample browser to. Text stays text (`svg.fonttype: none`) so the
figures are small and searchable; each figure gets its own `svg.hashsalt` so the clip-path ids of
several inlined figures cannot collide.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

from eft_eval.figures import PALETTE, label_offsets, pyplot
from eft_eval.figures import color as palette_color
from eft_eval.stats import short_label

_SVG_START = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def to_svg(fig: Any, name: str) -> str:
    """The figure as an inline `<svg>` element (no XML prolog, no creation date)."""
    plt = pyplot()
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = _SVG_START.sub("", buffer.getvalue(), count=1)
    # Scale with the page: keep the viewBox, drop the fixed size.
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="figure" role="img"', svg, count=1)


def pick_id(figure: str, run: int | None) -> str | None:
    return None if run is None else f"{figure}__run{run}"


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


BOX_PLOTS_PAST = 5
"""Runs a score-distribution figure shows as histograms; with more, as box plots (one row each)."""


def score_distribution(name: str, judge_label: str, series: Sequence[tuple[str, Sequence[float]]], integer: bool,
                       score_range: tuple[float | None, float | None] = (None, None)) -> str:
    """One judge's scores: a histogram per run (share of scored responses); box plots past 5 runs."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.0 if len(series) <= BOX_PLOTS_PAST else 0.8 + 0.35 * len(series)))
    values = [v for _, scores in series for v in scores]
    if not values:
        ax.text(0.5, 0.5, "no scored responses", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return to_svg(fig, f"dist-{name}")
    if len(series) > BOX_PLOTS_PAST:
        ax.boxplot([list(scores) or [math.nan] for _, scores in series], orientation="horizontal",
                   tick_labels=[label for label, _ in series])
        ax.set_xlabel(judge_label)
        ax.invert_yaxis()
    else:
        low, high = min(values), max(values)
        if integer and high - low <= 30:
            bins: Any = [x - 0.5 for x in range(int(low), int(high) + 2)]
        elif score_range[0] is not None and score_range[1] is not None and score_range[1] > score_range[0]:
            step = (score_range[1] - score_range[0]) / 10  # 0-100 in tens: the same bins for every run
            bins = [score_range[0] + step * k for k in range(11)]
        else:
            bins = 10 if high > low else [low - 0.5, low + 0.5]
        for index, (label, scores) in enumerate(series):
            if scores:
                weights = [1 / len(scores)] * len(scores)
                ax.hist(list(scores), bins=bins, weights=weights, histtype="step", linewidth=2,
                        color=palette_color(index), label=f"{label} (n={len(scores)})")
        ax.set_xlabel(judge_label)
        ax.set_ylabel("share of scored responses")
        if len(series) > 1:
            ax.legend(fontsize="small", frameon=False)
    ax.grid(alpha=0.3)
    return to_svg(fig, f"dist-{name}")


def means_by_run(name: str, judge_label: str, rows: Sequence[tuple[int, str, float | None, float | None]]) -> str:
    """Mean ± one standard error per run (rows: run index, label, mean, stderr); each clickable."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.38 * len(rows)))
    for position, (run, _label, mean, stderr) in enumerate(rows):
        if mean is None:
            continue
        container = ax.errorbar([mean], [position], xerr=[stderr or 0.0], fmt="o", color=PALETTE[0],
                                capsize=4, markersize=7)
        for artist in [container.lines[0], *container.lines[2]]:
            artist.set_gid(pick_id(f"means-{name}", run))
    ax.set_yticks(range(len(rows)), [label for _, label, _, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel(f"mean {judge_label}, ± 1 standard error")
    ax.grid(axis="x", alpha=0.3)
    return to_svg(fig, f"means-{name}")


def frontier(data: dict[str, Any], x_label: str, y_label: str, runs: Sequence[int | None]) -> str:
    """frontier.json's points with error bars, one curve per base scale, Pareto points filled."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    points = data.get("points") or []
    curves: dict[str, list[tuple[float, dict[str, Any], int | None]]] = {}
    for point, run in zip(points, runs):
        base = str(point.get("base") or point.get("base_scale") or "")
        alpha = point.get("alpha")
        curves.setdefault(base, []).append((float(alpha) if alpha is not None else math.inf, point, run))
    labels: list[tuple[float, float, str, str]] = []
    for index, (base, members) in enumerate(curves.items()):
        color = palette_color(index)
        members.sort(key=lambda m: m[0])
        xs = [m[1].get("x_mean") for m in members]
        ys = [m[1].get("y_mean") for m in members]
        drawable = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
        if len(drawable) > 1:
            ax.plot([p[0] for p in drawable], [p[1] for p in drawable], "-", color=color, alpha=0.5,
                    label=f"base {base}" if base else None)
        for _, point, run in members:
            if point.get("x_mean") is None or point.get("y_mean") is None:
                continue
            container = ax.errorbar(
                [point["x_mean"]], [point["y_mean"]], xerr=[point.get("x_stderr") or 0],
                yerr=[point.get("y_stderr") or 0],
                fmt="o", color=color, markerfacecolor=color if point.get("pareto") else "white",
                markersize=9, capsize=3,
            )
            for artist in [container.lines[0], *container.lines[2]]:
                artist.set_gid(pick_id("frontier", run))
            labels.append((point["x_mean"], point["y_mean"], short_label(str(point.get("label", ""))), color))
    # Points at the same place (two alphas scored alike) get their labels stacked, not overprinted.
    for (x, y, text, color), (dy, va) in zip(labels, label_offsets([(x, y) for x, y, _, _ in labels], line=10)):
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, dy), va=va, fontsize="small",
                    color=color if len(curves) > 1 else "black")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title("filled: on the Pareto frontier; bars: ± 1 standard error", fontsize="small")
    if any(curves) and len(curves) > 1:
        ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return to_svg(fig, "frontier")


def scaling(rows: Sequence[dict[str, Any]], runs: Sequence[int | None], judges: Sequence[str]) -> str:
    """Normalized improvement per configuration and judge, ± 1 bootstrap standard error."""
    plt = pyplot()
    def key(row: dict[str, Any]) -> str:
        return f"{row['task']}: {row.get('config')}" if row.get("task") else str(row.get("config"))

    configs = list(dict.fromkeys(key(r) for r in rows))
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(configs) * max(1, len(judges)) * 0.5 + 2), 4.0))
    width = 0.8 / max(1, len(judges))
    for j, judge in enumerate(judges):
        for row, run in zip(rows, runs):
            if row.get("judge") != judge or row.get("normalized_improvement") is None:
                continue
            x = configs.index(key(row)) - 0.4 + width * (j + 0.5)
            bars = ax.bar([x], [row["normalized_improvement"]], width=width * 0.9, color=palette_color(j),
                          yerr=[row.get("normalized_improvement_stderr") or 0], capsize=3, label=judge)
            bars.patches[0].set_gid(pick_id("scaling", run))
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), frameon=False, fontsize="small")
    ax.axhline(0, color="#555", linewidth=1)
    ax.axhline(1, color="#555", linewidth=1, linestyle="--")
    ax.set_xticks(range(len(configs)), configs)
    ax.set_ylabel("normalized improvement\n(0 = small fine-tuned, 1 = large fine-tuned)")
    ax.grid(axis="y", alpha=0.3)
    return to_svg(fig, "scaling")


def win_rates(name: str, rows: Sequence[tuple[int | None, str, dict[str, Any], dict[str, Any]]]) -> str:
    """Win rate and length-controlled win rate per run against the reference, with their intervals
    (rows: run index, label, win rate and LC win rate as `Estimate.to_dict()`); 0.5 = as good as it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 1.1 + 0.5 * len(rows)))
    for offset, (key, color, label, face) in enumerate(((2, PALETTE[0], "win rate", None),
                                                         (3, PALETTE[1], "length-controlled win rate", "white"))):
        for position, row in enumerate(rows):
            estimate: dict[str, Any] = row[2] if key == 2 else row[3]
            found = _finite([estimate.get("value")])
            if not found:
                continue
            value, bounds = found[0], _finite([estimate.get("ci_low"), estimate.get("ci_high")])
            error = [[max(0.0, value - bounds[0])], [max(0.0, bounds[1] - value)]] if len(bounds) == 2 else None
            container = ax.errorbar([value], [position + (offset - 0.5) * 0.25], xerr=error, fmt="o", color=color,
                                    markerfacecolor=face or color, capsize=3, markersize=7,
                                    label=label if position == 0 else None)
            for artist in [container.lines[0], *container.lines[2]]:
                artist.set_gid(pick_id(name, row[0]))
    ax.axvline(0.5, color="#555", linewidth=1, linestyle="--")
    ax.set_yticks(range(len(rows)), [short_label(row[1]) for row in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("share of prompts won against the reference (ties count half), 95% interval")
    ax.legend(frameon=False, fontsize="small", loc="lower left")
    ax.grid(axis="x", alpha=0.3)
    return to_svg(fig, name)


def annotator_agreement(rows: Sequence[tuple[str, dict[str, Any], dict[str, Any]]]) -> str:
    """Per annotator: agreement with the judge and with the other annotators, ± 1 standard error."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 1.0 + 0.45 * len(rows)))
    for offset, (key, color, label) in enumerate((("judge", PALETTE[0], "with the judge"),
                                                  ("others", PALETTE[1], "with the other annotators"))):
        xs, ys, errs = [], [], []
        for position, row in enumerate(rows):
            estimate = row[1] if key == "judge" else row[2]
            if estimate.get("value") is not None:
                xs.append(estimate["value"])
                ys.append(position + (offset - 0.5) * 0.25)
                errs.append(estimate.get("standard_error") or 0)
        ax.errorbar(xs, ys, xerr=errs, fmt="o", color=color, capsize=3, label=label)
    ax.set_yticks(range(len(rows)), [row[0] for row in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("agreement rate on 'any factual error' (higher = agrees more), ± 1 standard error")
    ax.legend(frameon=False, fontsize="small", loc="lower left")
    ax.grid(axis="x", alpha=0.3)
    return to_svg(fig, "annotators")


__all__ = ["BOX_PLOTS_PAST", "annotator_agreement", "frontier", "means_by_run", "pick_id", "scaling",
           "score_distribution", "to_svg", "win_rates"]
