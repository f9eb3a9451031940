"""`analyze frontier`: the helpful-harmless Pareto frontier of reward interpolation (paper Figure 5).

One point per run: mean and standard error on both judges over the run's own scored prompts.
The Pareto set uses each judge's direction (`higher_is_better`). Each point's probability of
being on the frontier comes from a paired bootstrap: prompt ids scored by both judges in every
run (`n_paired`) are resampled jointly across all runs, and the frontier found again each time.
Each point's alpha and base come from the caller's `points`, else from the run's spec (run.json,
or a bare file's samples); a run whose spec no file states is refused. Each point also has its mean
response length and the length difference from the first point, on the paired prompts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eft_eval.analysis._lengths import length_difference, mean_tokens
from eft_eval.analysis._runs import LoadedRun, refuse_different_prompts
from eft_eval.errors import EFTEvalError
from eft_eval.stats import (
    BootstrapSettings,
    pareto_probability,
    pareto_set,
    standard_error,
)


def frontier_analysis(
    runs: Sequence[LoadedRun],
    x: str,
    y: str,
    points: Mapping[str, Mapping[str, Any]] | None = None,
    settings: BootstrapSettings | None = None,
) -> dict[str, Any]:
    """frontier.json's content. `points` may give `{label: {"alpha": .., "base": ..}}` overriding run.json."""
    settings = settings or BootstrapSettings()
    if not runs:
        raise EFTEvalError("frontier: no runs given")
    refuse_different_prompts(runs, "frontier")
    x_better, y_better = runs[0].higher_is_better(x), runs[0].higher_is_better(y)
    x_scores, y_scores = [run.scores(x) for run in runs], [run.scores(y) for run in runs]
    overrides = points or {}
    settings_of = [_alpha_and_base(run, overrides.get(run.label, {})) for run in runs]
    bases = {str(base) for _, base in settings_of}
    rows: list[dict[str, Any]] = []
    for run, xs, ys, (alpha, base) in zip(runs, x_scores, y_scores, settings_of):
        x_values, y_values = list(xs.scores.values()), list(ys.scores.values())
        rows.append({
            "run": str(run.path),
            "label": _label(run, alpha, base, len(bases) > 1),
            "alpha": None if alpha is None else float(alpha),
            "base": base,
            "x_mean": float(np.mean(x_values)) if x_values else None,
            "x_stderr": standard_error(x_values),
            "y_mean": float(np.mean(y_values)) if y_values else None,
            "y_stderr": standard_error(y_values),
            "n_x": len(x_values),
            "n_y": len(y_values),
            "x_excluded": {k: v for k, v in xs.counts().items() if k != "n_scored"},
            "y_excluded": {k: v for k, v in ys.counts().items() if k != "n_scored"},
        })
    _unique_labels(rows, runs)
    defined = [i for i, row in enumerate(rows) if row["x_mean"] is not None and row["y_mean"] is not None]
    on_frontier = pareto_set([(rows[i]["x_mean"], rows[i]["y_mean"]) for i in defined], x_better, y_better)
    for row in rows:
        row["pareto"] = False
    for i, flag in zip(defined, on_frontier):
        rows[i]["pareto"] = flag
    common = _common_prompts(runs, x_scores, y_scores)
    if len(common) >= 2:
        probability = pareto_probability(
            np.asarray([[xs.scores[p] for p in common] for xs in x_scores]),
            np.asarray([[ys.scores[p] for p in common] for ys in y_scores]),
            x_better, y_better, settings)
    else:
        probability = np.full(len(runs), math.nan)
    for row, value in zip(rows, probability):
        row["pareto_probability"] = float(value) if math.isfinite(value) else None
    # Beside each point's scores: its mean length and the length change from the first point, paired.
    for row, run in zip(rows, runs):
        row.update({"mean_tokens": mean_tokens(run, common),
                    **length_difference(runs[0], run, common, settings)})
    return {
        "x_judge": x, "y_judge": y, "points": rows,
        "x_higher_is_better": x_better, "y_higher_is_better": y_better,
        "n_paired": len(common),
        "bootstrap": {"n_resamples": settings.n_resamples, "seed": settings.seed,
                      "resampled": "prompt ids scored by both judges in every run, jointly across runs"},
    }


def _alpha_and_base(run: LoadedRun, given: Mapping[str, Any]) -> tuple[Any, Any]:
    """The caller's alpha and base where given (the run's spec is then not read), else the run's."""
    # Not given.get(key, run.alpha): that reads the run's spec, refused when unknown, even when given.
    alpha = given["alpha"] if "alpha" in given else run.alpha  # noqa: SIM401
    return alpha, given["base"] if "base" in given else run.base  # noqa: SIM401


def _label(run: LoadedRun, alpha: Any, base: Any, several_bases: bool) -> str:
    if alpha is None or run.labelled:  # a label the caller gave is kept
        return run.label
    text = f"alpha={float(alpha):g}"
    return f"{text}, base={base}" if several_bases and base else text


def _unique_labels(rows: Sequence[dict[str, Any]], runs: Sequence[LoadedRun]) -> None:
    """Runs of one alpha that differ in something else (beta, a model) must not share a label:
    each colliding `alpha=...` label also names its run."""
    labels = [row["label"] for row in rows]
    for row, run in zip(rows, runs):
        if labels.count(row["label"]) > 1 and row["label"] != run.label:
            row["label"] = f"{row['label']} ({run.label})"


def _common_prompts(runs: Sequence[LoadedRun], x_scores: Sequence[Any], y_scores: Sequence[Any]) -> list[str]:
    common = set(x_scores[0].scores)
    for scores in [*x_scores, *y_scores]:
        common &= set(scores.scores)
    return [p for p in runs[0].prompt_ids if p in common]
