"""A jury: several judge models (`--judge-model a,b,c`) asked by every judge, one score per response.

Each model's judgment is a judgment of its own (asked, cached, re-asked and priced under its model
name) and is kept under the response's judgment as `models: {model: judgment}`. The judgment's
`score` is the jury's aggregation of the models that scored (`--jury-aggregation`, else the judge's
own `aggregation`), so every summary, figure and analysis reads the jury's score as it reads a
single judge's; the models' own scores stay there for per-model estimates and their agreement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from eft_eval.judging._spec import JudgeSpec


def jury_aggregation(spec: JudgeSpec, name: str | None) -> tuple[str, dict[str, Any]]:
    """(aggregation, parameters) a jury of `spec` uses: `name` if given, else the judge's own. The
    judge's parameters (a threshold) go with its own aggregation only."""
    if name is None or name == spec.aggregation:
        return spec.aggregation, dict(spec.aggregation_params)
    return name, {}


def combine_jury(judgments: Mapping[str, dict[str, Any]], spec: JudgeSpec,
                 aggregation: str | None = None) -> dict[str, Any]:
    """One judgment from each model's (`{model: judgment}`, in jury order): the jury's score, the
    first scoring model's reason, usage and attempts summed, every model's judgment kept."""
    from eft_eval.stats import get_aggregation

    name, params = jury_aggregation(spec, aggregation)
    models = list(judgments)
    scored = [judgments[m] for m in models if judgments[m]["status"] == "scored"]
    scores = [float(j["score"]) for j in scored]
    score = get_aggregation(name, params)(scores) if scores else math.nan
    shown = scored[0] if scored else judgments[models[0]]
    error = None
    if not math.isnan(score):
        status = "scored"
    elif scores:  # e.g. majority with a tie: the models do not agree on one score
        status, error = "failed", f"the {len(models)} jury models have no {name} ({scores})"
    elif any(j["status"] == "abstained" for j in judgments.values()):
        status = "abstained"
    else:
        status = "failed"
        error = next((j.get("error") for j in judgments.values() if j.get("error")), "no answer")
    usage: dict[str, int] = {}
    for judgment in judgments.values():
        for key, value in (judgment.get("usage") or {}).items():
            usage[key] = usage.get(key, 0) + int(value)
    combined: dict[str, Any] = {
        "status": status,
        "score": score if status == "scored" else None,
        "reason": shown["reason"],
        "raw": shown["raw"],
        "judge_model": ",".join(models),
        "attempts": sum(int(j["attempts"]) for j in judgments.values()),
        "usage": usage,
        "jury_aggregation": name,
        "models": {model: dict(judgments[model]) for model in models},
    }
    if error is not None:
        combined["error"] = error
    return combined


__all__ = ["combine_jury", "jury_aggregation"]
