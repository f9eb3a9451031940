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


def combine_samples(samples: Sequence[dict[str, Any]], spec: JudgeSpec) -> dict[str, Any]:
    """One judgment from K: aggregated score, the first scored sample's reason, all K kept."""
    from eft_eval.stats import get_aggregation

    scores = [float(s["score"]) for s in samples if s["status"] == "scored"]
    aggregate = get_aggregation(spec.aggregation, spec.aggregation_params)(scores) if scores else math.nan
    shown = next((s for s in samples if s["status"] == "scored"), samples[0])
    if not math.isnan(aggregate):
        status, error = "scored", None
    elif scores:  # e.g. majority with a tie: the samples do not agree on one score
        status, error = "failed", f"the {len(samples)} samples have no {spec.aggregation} ({scores})"
    elif any(s["status"] == "abstained" for s in samples):
        status, error = "abstained", None
    else:
        status, error = "failed", next((s.get("error") for s in samples if s.get("error")), "no answer")
    usage: dict[str, int] = {}
    for sample in samples:
        for key, value in (sample.get("usage") or {}).items():
            usage[key] = usage.get(key, 0) + int(value)
    judgment: dict[str, Any] = {
        "status": status,
        "score": aggregate if status == "scored" else None,
        "reason": shown["reason"],
        "raw": shown["raw"],
        "judge_model": shown["judge_model"],
        "attempts": sum(int(s["attempts"]) for s in samples),
        "usage": usage,
        "aggregation": spec.aggregation,
        "samples": [{key: s[key] for key in _SAMPLE_FIELDS if key in s} for s in samples],
    }
    if error is not None:
        judgment["error"] = error
    return judgment
