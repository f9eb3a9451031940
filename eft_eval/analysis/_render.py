"""Tables (printed) and figures (PNG + SVG) of the study analyses, from their JSON content.

Every axis names its judge and direction ("harm (lower is better)"); error bars are one standard
error for means and the percentile interval for normalized improvements and differences.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from eft_eval.analysis._files import axis_label, new_figure, save_figure
from eft_eval.figures import color, label_offsets
from eft_eval.stats import format_mean_se, format_number, format_table, short_label

# Tables mark a missing number with "-".
_num = partial(format_number, missing="-")


def _judges(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(r["judge"]) for r in rows))


def _direction(rows: Sequence[Mapping[str, Any]], judge: str) -> bool | None:
    return next((r.get("higher_is_better") for r in rows if r["judge"] == judge and "higher_is_better" in r), None)


def _interval_error(value: float, interval: Sequence[float] | None) -> list[list[float]]:
    if not interval or interval[0] is None or interval[1] is None:
        return [[0.0], [0.0]]
    return [[max(value - interval[0], 0.0)], [max(interval[1] - value, 0.0)]]


def _length_change(row: Mapping[str, Any]) -> str:
    """`+12.5 (3.0..21.0)`: the length difference in tokens and its interval; `-` when not recorded."""
    value, ci = row.get("length_difference"), row.get("length_difference_ci")
    if value is None:
        return "-"
    return f"{value:+.1f}" + (f" ({_num(ci[0], 1)}..{_num(ci[1], 1)})" if ci else "")


def _excluded(row: Mapping[str, Any]) -> str:
    return f"{row.get('n_abstained', 0)}/{row.get('n_failed', 0)}/{row.get('n_missing', 0)}"


# -- scaling -------------------------------------------------------------------------------------

def scaling_table(data: Mapping[str, Any]) -> str:
    rows = data["rows"]
    header = ["judge", "group", "config", "mean ± se", "n", "excl a/f/m", "norm. improvement ± se", "95% CI",
              "tokens", "Δ tokens vs small_ft (95% CI)", "note"]
    lines = []
    for r in rows:
        ci = r.get("normalized_improvement_ci")
        lines.append([r["judge"], r.get("group", ""), r["config"], format_mean_se(r.get("mean"), r.get("stderr")),
                      r.get("n"), _excluded(r) if r.get("group") != "aggregate" else "",
                      format_mean_se(r.get("normalized_improvement"), r.get("normalized_improvement_stderr")),
                      f"{_num(ci[0])}..{_num(ci[1])}" if ci else "-", _num(r.get("mean_tokens"), 1),
                      _length_change(r), r.get("note") or ""])
    paired = ", ".join(f"{k}: {v}" for k, v in data.get("n_paired", {}).items())
    return format_table(header, lines) + f"\nprompts scored in every run (paired): {paired}"


def scaling_figure(data: Mapping[str, Any], output_dir: Path) -> list[Path]:
    rows = [r for r in data["rows"] if r["config"] in ("up", "down")]
    judges = _judges(data["rows"])
    figure = new_figure(max(4.5 * len(judges), 5.0), 4.2)
    for index, judge in enumerate(judges):
        axes = figure.add_subplot(1, len(judges), index + 1)
        mine = [r for r in rows if r["judge"] == judge]
        groups = list(dict.fromkeys(str(r.get("group", "")) for r in mine)) or [""]
        configs = [c for c in ("up", "down") if any(r["config"] == c for r in mine)]
        width = 0.8 / max(len(configs), 1)
        for c_index, config in enumerate(configs):
            for g_index, group in enumerate(groups):
                row = next((r for r in mine if r["config"] == config and str(r.get("group", "")) == group), None)
                x = g_index + (c_index - (len(configs) - 1) / 2) * width
                value = None if row is None else row.get("normalized_improvement")
                if row is None or value is None:
                    axes.text(x, 0.02, "n/a", ha="center", fontsize=8)
                    continue
                axes.bar(x, value, width * 0.9, color=color(c_index),
                         label=f"{config}-scaling" if g_index == 0 else None,
                         yerr=_interval_error(value, row.get("normalized_improvement_ci")), capsize=3)
        axes.axhline(0.0, color="grey", linestyle="--", linewidth=0.8)
        axes.axhline(1.0, color="black", linestyle="--", linewidth=0.8)
        axes.set_xticks(range(len(groups)), [g or "all prompts" for g in groups], rotation=20 if len(groups) > 2 else 0)
        axes.set_title(axis_label(judge, _direction(data["rows"], judge)), fontsize=10)
        axes.set_ylabel("normalized improvement (higher is better)\n0 = small fine-tuned, 1 = large fine-tuned")
        if configs:
            axes.legend(fontsize=8, title="bars: 95% paired bootstrap interval", title_fontsize=7)
    return save_figure(figure, output_dir, "scaling")


# -- frontier ------------------------------------------------------------------------------------

def frontier_table(data: Mapping[str, Any]) -> str:
    x, y = data["x_judge"], data["y_judge"]
    header = ["label", "alpha", f"{x} ± se", f"{y} ± se", "n x/y", "pareto", "P(pareto)", "tokens",
              "Δ tokens vs first (95% CI)", "run"]
    lines = [[p["label"], _num(p.get("alpha"), 2), format_mean_se(p.get("x_mean"), p.get("x_stderr")),
              format_mean_se(p.get("y_mean"), p.get("y_stderr")), f"{p.get('n_x')}/{p.get('n_y')}",
              "yes" if p["pareto"] else "no", _num(p.get("pareto_probability"), 2), _num(p.get("mean_tokens"), 1),
              _length_change(p), p["run"]] for p in data["points"]]
    paired = data.get("n_paired")
    return format_table(header, lines) + f"\nprompts scored by both judges in every run (paired): {paired}"


def frontier_figure(data: Mapping[str, Any], output_dir: Path) -> list[Path]:
    figure = new_figure(6.4, 5.0)
    axes = figure.add_subplot(1, 1, 1)
    points = [p for p in data["points"] if p.get("x_mean") is not None and p.get("y_mean") is not None]
    bases = list(dict.fromkeys(str(p.get("base")) for p in points))
    labels: list[tuple[float, float, str, str]] = []
    for index, base in enumerate(bases):
        mine = sorted((p for p in points if str(p.get("base")) == base),
                      key=lambda p: (p.get("alpha") is None, p.get("alpha") or 0.0))
        line_color = color(index)
        axes.errorbar([p["x_mean"] for p in mine], [p["y_mean"] for p in mine],
                      xerr=[p.get("x_stderr") or 0.0 for p in mine], yerr=[p.get("y_stderr") or 0.0 for p in mine],
                      color=line_color, marker="o", markersize=4, capsize=2, linewidth=1,
                      label=f"base={base}" if base != "None" else "runs")
        labels += [(p["x_mean"], p["y_mean"],
                    f"{p['alpha']:g}" if p.get("alpha") is not None else short_label(p["label"]), line_color)
                   for p in mine]
    # Points at the same place (two alphas scored alike) get their labels stacked, not overprinted.
    for (x, y, text, text_color), (dy, va) in zip(labels, label_offsets([(x, y) for x, y, _, _ in labels], line=8)):
        axes.annotate(text, (x, y), textcoords="offset points", xytext=(5, dy), va=va, fontsize=7,
                      color=text_color if len(bases) > 1 else "black")
    frontier = [p for p in points if p["pareto"]]
    axes.scatter([p["x_mean"] for p in frontier], [p["y_mean"] for p in frontier], s=140, facecolors="none",
                 edgecolors="black", linewidths=1.2, label="Pareto set", zorder=3)
    axes.set_xlabel(axis_label(data["x_judge"], data.get("x_higher_is_better")))
    axes.set_ylabel(axis_label(data["y_judge"], data.get("y_higher_is_better")))
    axes.set_title("Reward interpolation frontier (labels: alpha; bars: ±1 se)", fontsize=10)
    axes.legend(fontsize=8)
    return save_figure(figure, output_dir, "frontier")


# -- top-p ---------------------------------------------------------------------------------------

def _top_p_name(value: Any) -> str:
    return "none" if value is None else f"{value:g}"


def top_p_table(data: Mapping[str, Any]) -> str:
    """The paper's Table 1: one line per top_p_weights, one column per judge (mean ± se)."""
    rows = data["rows"]
    judges = _judges(rows)
    runs = list(dict.fromkeys(r["run"] for r in rows))
    header = ["top_p_weights", *[axis_label(j, _direction(rows, j)) for j in judges], "n", "excl a/f/m", "run"]
    lines = []
    for run in runs:
        mine = {r["judge"]: r for r in rows if r["run"] == run}
        first = next(iter(mine.values()))
        lines.append([_top_p_name(first["top_p_weights"]),
                      *[format_mean_se(mine[j]["mean"], mine[j]["stderr"]) if j in mine else "-" for j in judges],
                      "/".join(str(mine[j]["n"]) for j in judges if j in mine),
                      " ".join(_excluded(mine[j]) for j in judges if j in mine), run])
    return format_table(header, lines)


def top_p_figure(data: Mapping[str, Any], output_dir: Path) -> list[Path]:
    rows = data["rows"]
    judges = _judges(rows)
    figure = new_figure(max(4.0 * len(judges), 4.5), 3.8)
    for index, judge in enumerate(judges):
        axes = figure.add_subplot(1, len(judges), index + 1)
        mine = [r for r in rows if r["judge"] == judge and r.get("mean") is not None]
        axes.errorbar(range(len(mine)), [r["mean"] for r in mine], yerr=[r.get("stderr") or 0.0 for r in mine],
                      marker="o", capsize=3, color=color(index))
        axes.set_xticks(range(len(mine)), [_top_p_name(r["top_p_weights"]) for r in mine])
        axes.set_xlabel("top_p_weights")
        axes.set_ylabel(axis_label(judge, _direction(rows, judge)) + "\nmean ± 1 se")
    return save_figure(figure, output_dir, "top_p")


# -- compare -------------------------------------------------------------------------------------

def compare_table(data: Mapping[str, Any]) -> str:
    header = ["judge", "n paired", "A", "B", "B - A ± se", "95% CI", "Wilcoxon p", "sign p", "better",
              "Δ tokens B - A (95% CI)"]
    lines = [[axis_label(r["judge"], r["higher_is_better"]), r["n_paired"], _num(r["mean_a"]), _num(r["mean_b"]),
              format_mean_se(r["difference"], r["difference_stderr"]),
              f"{_num(r['difference_ci'][0])}..{_num(r['difference_ci'][1])}",
              _num(r["wilcoxon_p"], 2, significant=True), _num(r["sign_test_p"], 2, significant=True),
              {"a": "A", "b": "B"}.get(r["better"] or "", "neither"), _length_change(r)]
             for r in data["rows"]]
    different = data.get("n_different_prompts") or 0
    note = f"\n{different} prompts whose text differs between A and B are left out" if different else ""
    return f"A = {data['run_a']}\nB = {data['run_b']}\n" + format_table(header, lines) + note


def compare_figure(data: Mapping[str, Any], output_dir: Path) -> list[Path]:
    """One panel per judge (judges' scales differ): the paired difference and its 95% interval."""
    rows = [r for r in data["rows"] if r["difference"] is not None and math.isfinite(r["difference"])]
    figure = new_figure(6.4, 0.4 + 1.3 * max(len(rows), 1))
    for index, r in enumerate(rows):
        axes = figure.add_subplot(max(len(rows), 1), 1, index + 1)
        axes.errorbar([r["difference"]], [0], xerr=_interval_error(r["difference"], r["difference_ci"]),
                      marker="o", capsize=4, color=color(index))
        axes.axvline(0.0, color="grey", linestyle="--", linewidth=0.8)
        axes.set_yticks([])
        axes.set_title(f"{axis_label(r['judge'], r['higher_is_better'])}: B - A, n={r['n_paired']} paired prompts",
                       fontsize=9)
    if rows:
        figure.axes[-1].set_xlabel(
            f"paired difference B - A (95% interval); A = {data['label_a']}, B = {data['label_b']}", fontsize=8)
    return save_figure(figure, output_dir, "compare")


# -- judge agreement -----------------------------------------------------------------------------

def agreement_table(data: Mapping[str, Any]) -> str:
    from eft_eval.analysis._judge_agreement import agreement_rows, estimate_text

    lines = [[r["comparison"], r["statistic"], estimate_text(r)] for r in agreement_rows(dict(data))]
    excluded = data["excluded"]
    return (format_table(["comparison", "statistic", "estimate"], lines)
            + f"\nlabel: {data['label']}; paired responses: {data['n_paired']}; excluded: A {excluded['a']}, "
              f"B {excluded['b']}, different response {excluded['different_response']}, "
              f"scored by one judge only {excluded['scored_by_one_only']}")


def agreement_figure(data: Mapping[str, Any], output_dir: Path) -> list[Path]:
    figure = new_figure(9.0, 4.0)
    axes = figure.add_subplot(1, 2, 1)
    matrix = data["confusion"]["matrix"]
    axes.imshow(matrix, cmap="Blues")
    for i in range(2):
        for j in range(2):
            dark = matrix[i][j] > 0.6 * max(max(row) for row in matrix)
            axes.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=12,
                      color="white" if dark else "black")
    label = data["label"]
    axes.set_xticks([0, 1], [label, "below"])
    axes.set_yticks([0, 1], [label, "below"])
    axes.set_xlabel(f"{data['judge_b']} (B)")
    axes.set_ylabel(f"{data['judge_a']} (A)")
    axes.set_title(f"agreement {_num(data['agreement']['value'])}, kappa {_num(data['kappa']['value'])}", fontsize=10)
    scatter = figure.add_subplot(1, 2, 2)
    # Judges give few distinct scores: one marker per (A, B) pair, its area the number of responses.
    counts = Counter((p["a"], p["b"]) for p in data["pairs"])
    scatter.scatter([a for a, _ in counts], [b for _, b in counts], s=[12 * c for c in counts.values()], alpha=0.6)
    direction = data.get("higher_is_better")
    scatter.set_xlabel(axis_label(f"{data['judge_a']} score", direction, " (A)"))
    scatter.set_ylabel(axis_label(f"{data['judge_b']} score", direction, " (B)"))
    scatter.set_title(f"Spearman {_num(data['spearman']['value'])}", fontsize=10)
    return save_figure(figure, output_dir, "agreement")
