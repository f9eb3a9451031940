"""Study sections: the analyses' JSON (docs/formats.md) as tables and clickable figures.

Each point or bar is tied to the run folder it came from, so clicking it filters the sample
browser to that run. frontier.json and top_p.json name their run; scaling.json names a
configuration (`small_ft`, `up`, ...), matched to a run folder of that name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eft_eval.report import _figures as figures
from eft_eval.report._collect import RunData, StudyData
from eft_eval.stats import format_mean_se, short_label


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9.=]+", "-", name.lower()).strip("-")


def match_run(ref: Any, runs: Sequence[RunData], task: str | None = None) -> int | None:
    """The index of the run a study row names (a folder path, a folder name or a label)."""
    if ref is None:
        return None
    text = str(ref)
    try:
        resolved = Path(text).resolve()
    except OSError:
        resolved = None
    for index, run in enumerate(runs):
        if resolved is not None and run.path.resolve() in (resolved,
                                                           resolved.parent
                                                           if resolved.name.endswith(".jsonl") else None):
            return index
    wanted = _normal(Path(text).name if "/" in text else text)
    candidates = [i for i, run in enumerate(runs) if wanted in (_normal(run.path.name), _normal(run.label))]
    if not candidates:  # `small_ft` in a sweep folder named `hh-small-ft`
        candidates = [i for i, run in enumerate(runs) if _normal(run.path.name).endswith("-" + wanted)]
    if task is not None and len(candidates) > 1:
        candidates = [i for i in candidates if runs[i].run.get("task") == task] or candidates
    return candidates[0] if len(candidates) == 1 else None


def fmt(value: Any, stderr: Any = None, digits: int = 3) -> str:
    """`0.412 ± 0.031`, `-` for a missing number; significant digits, as the report's tables mix scales."""
    return format_mean_se(value, stderr, digits, significant=True, stderr_digits=2)


def _power_words(data: dict[str, Any]) -> str:
    """`80% power, two-sided alpha 0.05`: the settings the analysis recorded for its MDEs."""
    settings = data.get("minimum_detectable_effect") or {}
    power, alpha = settings.get("power", 0.8), settings.get("alpha", 0.05)
    return f"{power:.0%} power, two-sided alpha {alpha:g}"


def _difference(difference: Any, mde: Any, below: Any, reference: str, power: str) -> dict[str, Any] | None:
    """A difference from the study's reference with its minimum detectable effect (`analyze power`):
    `text` (`+0.025`), and `below` with a tooltip when it is smaller than its paired prompts can
    detect. None where the analysis recorded none (the reference itself, an older JSON)."""
    if not isinstance(difference, (int, float)) or isinstance(difference, bool):
        return None
    text = f"+{fmt(difference)}" if difference >= 0 else fmt(difference)
    if not isinstance(mde, (int, float)):
        return {"text": text, "below": False, "title": ""}
    why = (f"The paired difference from {reference} ({text}) is smaller than the minimum detectable effect of "
           f"these prompts ({fmt(mde)}: {power}): they cannot tell it from no difference."
           if below else f"Minimum detectable effect of these prompts: {fmt(mde)} ({power}).")
    return {"text": text, "below": bool(below), "mde": fmt(mde), "title": why}


def _frontier(data: dict[str, Any], runs: Sequence[RunData], label: Callable[[str], str]) -> dict[str, Any]:
    points = data.get("points") or []
    ids = [match_run(p.get("run"), runs) for p in points]
    x_label, y_label = label(str(data.get("x_judge", "x"))), label(str(data.get("y_judge", "y")))
    rows = [
        {
            "run": run, "label": short_label(str(p.get("label", ""))),
            "title": str(p.get("label")) if short_label(str(p.get("label", ""))) != p.get("label", "") else None,
            "alpha": fmt(p.get("alpha")),
            "x": fmt(p.get("x_mean"), p.get("x_stderr")), "y": fmt(p.get("y_mean"), p.get("y_stderr")),
            "pareto": "yes" if p.get("pareto") else "no", "probability": fmt(p.get("pareto_probability"), digits=2),
            "dx": _difference(p.get("x_difference"), p.get("x_minimum_detectable_effect"), p.get("x_below_mde"),
                              "the first point", _power_words(data)),
            "dy": _difference(p.get("y_difference"), p.get("y_minimum_detectable_effect"), p.get("y_below_mde"),
                              "the first point", _power_words(data)),
        }
        for p, run in zip(points, ids)
    ]
    return {"svg": figures.frontier(data, x_label, y_label, ids), "x_label": x_label, "y_label": y_label, "rows": rows,
            "differences": any(row["dx"] or row["dy"] for row in rows),
            "title": f"{data.get('x_judge', 'x')}–{data.get('y_judge', 'y')} frontier"}


def _scaling(data: dict[str, Any], runs: Sequence[RunData], label: Callable[[str], str]) -> dict[str, Any]:
    rows = data.get("rows") or []
    ids = [match_run(r.get("run") or r.get("config"), runs, r.get("task")) for r in rows]
    judges = list(dict.fromkeys(str(r.get("judge")) for r in rows))
    table = [
        {
            "run": run, "task": r.get("task") or r.get("group") or "", "judge": label(str(r.get("judge"))),
            "config": r.get("config"),
            "mean": fmt(r.get("mean"), r.get("stderr")), "n": r.get("n", "-"),
            "ni": fmt(r.get("normalized_improvement"), r.get("normalized_improvement_stderr")),
            "ci": _interval(r.get("normalized_improvement_ci")), "note": r.get("note") or r.get("reason") or "",
            "difference": _difference(r.get("difference_from_small_ft"), r.get("minimum_detectable_effect"),
                                      r.get("below_mde"), "small_ft", _power_words(data)),
        }
        for r, run in zip(rows, ids)
    ]
    drawable = any(r.get("normalized_improvement") is not None for r in rows)
    return {"svg": figures.scaling(rows, ids, judges) if drawable else None, "rows": table,
            "differences": any(row["difference"] for row in table),
            "has_task": any(r.get("task") or r.get("group") for r in rows), "n_paired": data.get("n_paired") or {}}


def _interval(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return f"{fmt(value[0])} to {fmt(value[1])}"
    return "-"


def _top_p(data: dict[str, Any], runs: Sequence[RunData], label: Callable[[str], str]) -> dict[str, Any]:
    """The paper's Table 1 layout: one row per top_p_weights, one column per judge."""
    rows = data.get("rows") or []
    judges = list(dict.fromkeys(str(r.get("judge")) for r in rows))
    by_run: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = str(r.get("run"))
        entry = by_run.setdefault(key, {"run": match_run(r.get("run"), runs),
                                        "top_p": r.get("top_p_weights"), "cells": {}})
        entry["cells"][str(r.get("judge"))] = f"{fmt(r.get('mean'), r.get('stderr'))} (n={r.get('n', '?')})"
    table = [{"run": e["run"], "top_p": "none" if e["top_p"] is None else fmt(e["top_p"]),
              "cells": [e["cells"].get(j, "-") for j in judges]} for e in by_run.values()]
    return {"judges": [label(j) for j in judges], "rows": table}


def _generic(data: dict[str, Any]) -> dict[str, Any]:
    """Any other analysis (compare, agreement): its rows as a table, else its top-level numbers."""
    rows = data.get("rows")
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        columns = list(dict.fromkeys(k for r in rows for k, v in r.items() if not isinstance(v, (dict, list))))
        return {"columns": columns, "rows": [[fmt(r.get(c)) for c in columns] for r in rows]}
    flat = _flatten(data)
    return {"columns": ["figure", "value"], "rows": [[key, fmt(value)] for key, value in flat]}


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and "value" in data and "standard_error" in data:  # an estimate: one line
        text = fmt(data.get("value"), data.get("standard_error"))
        if data.get("ci_low") is not None and data.get("ci_high") is not None:
            text += f" (interval {fmt(data['ci_low'])} to {fmt(data['ci_high'])}, n={data.get('n', '?')})"
        return [(prefix, text)]
    if isinstance(data, dict):
        found: list[tuple[str, Any]] = []
        for key, value in data.items():
            found += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return found
    if isinstance(data, list):
        if all(isinstance(v, (int, float, str)) for v in data) and len(data) <= 4:
            return [(prefix, ", ".join(fmt(v) for v in data))]
        return [(prefix, f"({len(data)} entries)")]
    return [(prefix, data)]


def study_sections(studies: Sequence[StudyData], runs: Sequence[RunData],
                   label: Callable[[str], str]) -> list[dict[str, Any]]:
    """One section per study folder; `label(judge)` names a judge with its direction."""
    sections = []
    for study in studies:
        analyses = study.analyses
        sections.append({
            "root": str(study.root),
            "name": str(study.sweep.get("study") or study.root.name),
            "about": str(study.sweep.get("about") or ""),
            "frontier": _frontier(analyses["frontier"], runs, label) if "frontier" in analyses else None,
            "scaling": _scaling(analyses["scaling"], runs, label) if "scaling" in analyses else None,
            "top_p": _top_p(analyses["top_p"], runs, label) if "top_p" in analyses else None,
            "other": [(name, _generic(data)) for name, data in analyses.items()
                      if name not in ("frontier", "scaling", "top_p")],
        })
    return sections


__all__ = ["fmt", "match_run", "study_sections"]
