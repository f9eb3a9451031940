"""`--judge-samples K`: ask a judge K times per response and score the response by its aggregation.

Judges are not deterministic even at temperature 0, so one judgment is one draw. Sample k asks
with `seed: k` (sample 0 sends no seed, so it is the same request, and the same cache entry, as
a single-sample run: going from K=1 to K=3 pays for two more answers, not three); a judge YAML
that wants more spread sets a temperature in `sampling`. All K judgments are kept under the
judgment's `samples`; its `score` is the judge's aggregation (mean, median, majority, ...) of
the scored ones, so summaries and intervals computed over responses are clustered by response.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from eft_eval.judging._spec import JudgeSpec

_SAMPLE_FIELDS = ("status", "score", "verdict", "reason", "raw", "attempts", "usage", "error")


def sample_params(spec: JudgeSpec, sample: int) -> dict[str, Any]:
    """Request parameters of sample number `sample` (0-based) of one judgment."""
    params = dict(spec.sampling)
    if sample > 0:
        params["seed"] = sample
    return params


def aggregate_judgments(judgments: Sequence[dict[str, Any]], aggregation: str, params: dict[str, Any],
                        what: str, judge_model: str | None = None) -> dict[str, Any]:
    """The fields several judgments of one response share once aggregated (a judge's K samples, a
    jury's models): status, score, the first scored one's reason and raw answer, attempts and usage
    summed, and `error` when none scored. `what` names them in that error ("3 samples");
    `judge_model` is the shown judgment's unless given."""
    from eft_eval.stats import get_aggregation

    scores = [float(j["score"]) for j in judgments if j["status"] == "scored"]
    aggregate = get_aggregation(aggregation, params)(scores) if scores else math.nan
    shown = next((j for j in judgments if j["status"] == "scored"), judgments[0])
    if not math.isnan(aggregate):
        status, error = "scored", None
    elif scores:  # e.g. majority with a tie: the judgments do not agree on one score
        status, error = "failed", f"the {what} have no {aggregation} ({scores})"
    elif any(j["status"] == "abstained" for j in judgments):
        status, error = "abstained", None
    else:
        status, error = "failed", next((j.get("error") for j in judgments if j.get("error")), "no answer")
    usage: dict[str, int] = {}
    for judgment in judgments:
        for key, value in (judgment.get("usage") or {}).items():
            usage[key] = usage.get(key, 0) + int(value)
    combined: dict[str, Any] = {
        "status": status,
        "score": aggregate if status == "scored" else None,
        "reason": shown["reason"],
        "raw": shown["raw"],
        "judge_model": shown["judge_model"] if judge_model is None else judge_model,
        "attempts": sum(int(j["attempts"]) for j in judgments),
        "usage": usage,
    }
    if error is not None:
        combined["error"] = error
    return combined


def combine_samples(samples: Sequence[dict[str, Any]], spec: JudgeSpec) -> dict[str, Any]:
    """One judgment from K: aggregated score, the first scored sample's reason, all K kept."""
    judgment = aggregate_judgments(samples, spec.aggregation, dict(spec.aggregation_params),
                                   f"{len(samples)} samples")
    error = judgment.pop("error", None)
    judgment["aggregation"] = spec.aggregation
    judgment["samples"] = [{key: s[key] for key in _SAMPLE_FIELDS if key in s} for s in samples]
    if error is not None:
        judgment["error"] = error
    return judgment
