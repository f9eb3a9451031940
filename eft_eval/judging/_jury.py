"""A jury: several judge models (`--judge-model a,b,c`) asked by every judge, one score per response.

Each model's judgment is a judgment of its own (asked, cached, re-asked and priced under its model
name) and is kept under the response's judgment as `models: {model: judgment}`. The judgment's
`score` is the jury's aggregation of the models that scored (`--jury-aggregation`, else the judge's
own `aggregation`), so every summary, figure and analysis reads the jury's score as it reads a
single judge's; the models' own scores stay there for per-model estimates and their agreement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eft_eval.judging._samples import aggregate_judgments
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
    name, params = jury_aggregation(spec, aggregation)
    models = list(judgments)
    combined = aggregate_judgments([judgments[m] for m in models], name, params,
                                   f"{len(models)} jury models", judge_model=",".join(models))
    error = combined.pop("error", None)
    combined["jury_aggregation"] = name
    combined["models"] = {model: dict(judgments[model]) for model in models}
    if error is not None:
        combined["error"] = error
    return combined


__all__ = ["combine_jury", "jury_aggregation"]
