"""Per-judge summaries: mean, standard error, the judge's aggregate, and the three counts.

Abstained and failed items are counted, not averaged: a failure is never a score of 0. The same
summaries per group (per model, per document category) come from one function, `summarize_groups`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from eft_eval.errors import EFTEvalError
from eft_eval.runfolder import STATUSES
from eft_eval.stats._aggregation import get_aggregation, is_finite


class JudgeLike(Protocol):
    """What a summary needs to know about a judge (`eft_eval.judging.JudgeSpec` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def higher_is_better(self) -> bool: ...
    @property
    def aggregation(self) -> str: ...
    @property
    def aggregation_params(self) -> Mapping[str, Any]: ...


def summarize_judgments(judgments: Iterable[Mapping[str, Any]], spec: JudgeLike | None = None) -> dict[str, Any]:
    """Summary of one judge's judgments (dicts with `status` and `score`)."""
    scores: list[float] = []
    counts = dict.fromkeys(STATUSES, 0)
    tokens = {"prompt_tokens": 0, "completion_tokens": 0}
    judgments = list(judgments)
    for judgment in judgments:
        counts[judgment["status"]] += 1
        if judgment["status"] == "scored":
            scores.append(_score_of(judgment, spec))
        for key in tokens:
            tokens[key] += int((judgment.get("usage") or {}).get(key, 0))
    aggregation = spec.aggregation if spec is not None else "mean"
    params = dict(spec.aggregation_params) if spec is not None else {}
    aggregate = get_aggregation(aggregation, params)(scores)
    mean = get_aggregation("mean")(scores)
    summary: dict[str, Any] = {
        "mean": None if math.isnan(mean) else mean,
        "stderr": standard_error(scores),
        "aggregate": None if math.isnan(aggregate) else aggregate,
        "n": sum(counts.values()),
        "n_scored": counts["scored"],
        "n_abstained": counts["abstained"],
        "n_failed": counts["failed"],
        "usage": tokens,
    }
    if any(judgment.get("samples") for judgment in judgments):  # --judge-samples K: judge noise
        from eft_eval.stats._judge_noise import judge_noise_of

        summary["judge_noise"] = _finite_values(judge_noise_of, judgments)
    if any(judgment.get("models") for judgment in judgments):  # a jury of judge models: each one, and alpha
        summary["jury"] = summarize_jury(judgments, spec)
    if spec is not None:
        described: dict[str, Any] = {"higher_is_better": spec.higher_is_better, "aggregation": spec.aggregation}
        if params:
            described["aggregation_params"] = params
        summary = {**described, **summary}
    return summary


def summarize_jury(judgments: Sequence[Mapping[str, Any]], spec: Any = None) -> dict[str, Any] | None:
    """results.json's `jury` of one judge: the aggregation, each model's summary (as the judge's
    own), and their agreement; None when no judgment was a jury's."""
    from eft_eval.stats._jury import alpha_level, jury_matrix, krippendorff_alpha_estimate

    juries = [j for j in judgments if j.get("models")]
    if not juries:
        return None
    models = list(dict.fromkeys(model for j in juries for model in j["models"]))
    level = alpha_level(getattr(spec, "score", None))
    alpha = krippendorff_alpha_estimate(jury_matrix(judgments, models), level)
    per_model = {}
    for model in models:
        own = [j["models"][model] for j in juries if model in j["models"]]
        summary = summarize_judgments(own, spec)
        per_model[model] = {key: summary[key] for key in ("mean", "stderr", "aggregate", "n", "n_scored",
                                                           "n_abstained", "n_failed", "usage")}
    return {
        "aggregation": juries[0].get("jury_aggregation"),
        "models": per_model,
        "agreement": {"krippendorff_alpha": alpha.to_dict(), "level": level, "n_models": len(models)},
    }


def summarize_groups(
    rows: Sequence[Mapping[str, Any]],
    judges: Sequence[JudgeLike],
    key: Callable[[Mapping[str, Any]], str | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """{group: {judge: summary}} over rows grouped by `key(row)` (rows keyed None are left out).

    Without `key`, one group `"all"` holds every row.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        group = "all" if key is None else key(row)
        if group is not None:
            groups.setdefault(group, []).append(row)
    return {group: _per_judge(selected, judges) for group, selected in sorted(groups.items())}


def _per_judge(rows: Sequence[Mapping[str, Any]], judges: Sequence[JudgeLike]) -> dict[str, Any]:
    return {
        spec.name: summarize_judgments(
            [r["judgments"][spec.name] for r in rows if spec.name in (r.get("judgments") or {})], spec
        )
        for spec in judges
    }


def row_model(row: Mapping[str, Any]) -> str:
    return str(row.get("model"))


def row_category(row: Mapping[str, Any]) -> str | None:
    """The task document's `category` (the demo's everyday / factual / harmful), if it has one."""
    doc = row.get("doc")
    return str(doc["category"]) if isinstance(doc, Mapping) and "category" in doc else None


def summarize_samples(rows: Sequence[Mapping[str, Any]], judges: Sequence[JudgeLike]) -> dict[str, Any]:
    """results.json's summaries: `judges` over all rows, `by_model` when the rows come from several
    models, `by_category` when the task's documents have a category, `length` when the samples
    record their response lengths (`stats.summarize_lengths`)."""
    summary: dict[str, Any] = {"judges": _per_judge(rows, judges)}
    if any("response_tokens" in row for row in rows):
        from eft_eval.stats._length import summarize_lengths  # numpy and scipy: only when there are lengths

        summary["length"] = summarize_lengths(rows)
    by_model = summarize_groups(rows, judges, row_model)
    if len(by_model) > 1:
        summary["by_model"] = by_model
    by_category = summarize_groups(rows, judges, row_category)
    if by_category:
        summary["by_category"] = by_category
    return summary


def standard_error(scores: Sequence[float]) -> float | None:
    """Standard error of the mean (sample standard deviation / sqrt(n)); None below two scores,
    and None when it is not a finite number (a score that is not, or one near the float limit)."""
    n = len(scores)
    if n < 2 or not all(is_finite(s) for s in scores):
        return None
    # Computed on the scores divided by a power of two, which is exact: the same result, but
    # squares of huge scores cannot overflow.
    exponent = math.frexp(max(abs(float(s)) for s in scores))[1]
    scaled = [math.ldexp(float(s), -exponent) for s in scores]
    mean = sum(scaled) / n
    try:
        return math.ldexp(math.sqrt(sum((s - mean) ** 2 for s in scaled) / (n - 1) / n), exponent)
    except OverflowError:  # a spread beyond the largest float
        return None


def _score_of(judgment: Mapping[str, Any], spec: JudgeLike | None) -> float:
    """A scored judgment's score as a float: infinite when too large for one (the summary is then
    undefined); a score that is no number at all is an error naming it."""
    score = judgment.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        judge = f" of judge {spec.name!r}" if spec is not None else ""
        raise EFTEvalError(f"a judgment{judge} has status 'scored' but score {score!r:.40}, not a number; "
                           "correct or remove that row of samples.jsonl")
    try:
        return float(score)
    except OverflowError:
        return math.inf


def _finite_values(compute: Callable[[Any], dict[str, Any] | None], argument: Any) -> dict[str, Any] | None:
    """`compute(argument)` with values that are not finite numbers as None, and None when it overflows:
    a summary of strange scores is partly undefined, never an error that keeps results unwritten."""
    try:
        result = compute(argument)
    except (OverflowError, ValueError):  # ValueError: math.fsum of inf and -inf
        return None
    if result is None:
        return None
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in result.items()}
