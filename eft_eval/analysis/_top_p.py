"""`analyze top-p`: runs that differ in `top_p_weights`, in the paper's Table 1 layout.

One row per (run, judge): mean, standard error and n over the run's scored prompts, with what was
excluded counted. `top_p_weights` comes from each run's run.json model spec, or for a bare samples
file from its samples' `model` field (null: no filtering); a run whose setting neither states is
refused, never shown as "no filtering".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eft_eval.analysis._runs import LoadedRun
from eft_eval.errors import EFTEvalError
from eft_eval.stats import standard_error


def top_p_analysis(
    runs: Sequence[LoadedRun],
    judges: Sequence[str] | None = None,
    top_p: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """top_p.json's content. `top_p` may give `{run label: top_p_weights}` overriding run.json."""
    if not runs:
        raise EFTEvalError("top-p: no runs given")
    names = list(judges or runs[0].judge_names())
    rows = []
    for run in runs:
        # The caller's value, when given, is the run's setting: its spec is then not needed.
        value = top_p[run.label] if top_p and run.label in top_p else run.top_p_weights
        for judge in names:
            scores = run.scores(judge)
            values = list(scores.scores.values())
            rows.append({
                "run": str(run.path), "label": run.label,
                "top_p_weights": None if value is None else float(value),
                "judge": judge,
                "mean": float(np.mean(values)) if values else None,
                "stderr": standard_error(values),
                "n": len(values),
                **{k: v for k, v in scores.counts().items() if k != "n_scored"},
                "higher_is_better": run.direction(judge),
            })
    return {"rows": rows}
