"""Per-judge summaries: mean and standard error over scored items, and the three counts.

Abstained and failed items are counted, not averaged: a failure is never a score of 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eft_eval.judging._spec import JudgeSpec


def summarize_judgments(judgments: Iterable[Mapping[str, Any]], spec: JudgeSpec | None = None) -> dict[str, Any]:
    """Summary of one judge's judgments (dicts with `status` and `score`)."""
    scores: list[float] = []
    counts = {"scored": 0, "abstained": 0, "failed": 0}
    tokens = {"prompt_tokens": 0, "completion_tokens": 0}
    for judgment in judgments:
        counts[judgment["status"]] += 1
        if judgment["status"] == "scored":
            scores.append(float(judgment["score"]))
        for key in tokens:
            tokens[key] += int((judgment.get("usage") or {}).get(key, 0))
    summary: dict[str, Any] = {
        "mean": sum(scores) / len(scores) if scores else None,
        "stderr": _standard_error(scores),
        "n": sum(counts.values()),
        "n_scored": counts["scored"],
        "n_abstained": counts["abstained"],
        "n_failed": counts["failed"],
        "usage": tokens,
    }
    if spec is not None:
        summary = {"higher_is_better": spec.higher_is_better, "aggregation": spec.aggregation, **summary}
    return summary


def _standard_error(scores: Sequence[float]) -> float | None:
    """Standard error of the mean (sample standard deviation / sqrt(n)); None below two scores."""
    n = len(scores)
    if n < 2:
        return None
    mean = sum(scores) / n
    return math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1) / n)
