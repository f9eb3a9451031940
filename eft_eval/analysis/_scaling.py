"""`analyze scaling`: each configuration's score and its normalized improvement (paper Figures 3, 4, 6).

    normalized improvement = (x - small_ft) / (large_ft - small_ft)

0 is the small fine-tuned model, 1 the large fine-tuned one, whatever the judge's direction. The
ratio and its paired bootstrap use the prompts scored in every run of the group (`n_paired`);
each configuration's own mean uses all its scored prompts (`n`). A zero denominator gives no
ratio; one whose interval holds 0 is flagged (`note`). Several groups (tasks, model families)
give one row each, and an `aggregate` group averages up- and down-scaling over them (Figure 3).
Each row also has its mean response length and the length difference from small_ft (paired).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eft_eval.analysis._lengths import length_difference, mean_tokens
from eft_eval.analysis._runs import LoadedRun, paired_scores, refuse_different_prompts
from eft_eval.errors import EFTEvalError
from eft_eval.stats import (
    DENOMINATOR_WITHIN_NOISE,
    DENOMINATOR_ZERO,
    BootstrapSettings,
    distribution_estimate,
    normalized_improvement,
    standard_error,
)

ROLES = ("small_ft", "large_ft", "up", "down")
"""Configuration names in scaling.json; `small-ft` style keys are accepted too."""
AGGREGATE = "aggregate"

_NOTES = {
    DENOMINATOR_ZERO: "large_ft and small_ft score the same: no normalized improvement",
    DENOMINATOR_WITHIN_NOISE: "large_ft - small_ft is within its own noise (its interval holds 0): "
                              "the normalized improvement is unreliable",
}


def role_name(key: str) -> str:
    role = key.strip().lower().replace("-", "_")
    if role not in ROLES:
        raise EFTEvalError(f"scaling: unknown configuration {key!r} (expected "
                           f"{', '.join(r.replace('_', '-') for r in ROLES)})")
    return role


def scaling_analysis(
    groups: Sequence[tuple[str | None, Mapping[str, LoadedRun]]],
    judges: Sequence[str] | None = None,
    settings: BootstrapSettings | None = None,
) -> dict[str, Any]:
    """scaling.json's content for groups of runs `{role: run}` (one group: no `group` key).

    `judges`: default, every judge that scored all runs of the first group.
    """
    settings = settings or BootstrapSettings()
    if not groups:
        raise EFTEvalError("scaling: no runs given")
    rows: list[dict[str, Any]] = []
    n_paired: dict[str, Any] = {}
    per_group_ni: dict[tuple[str, str], list[tuple[float, np.ndarray, int]]] = {}
    several = len(groups) > 1
    for index, (name, given) in enumerate(groups):
        runs = {role_name(key): run for key, run in given.items()}
        where = f"scaling group {name!r}" if name else "scaling"
        for needed in ("small_ft", "large_ft"):
            if needed not in runs:
                raise EFTEvalError(f"{where}: the {needed.replace('_', '-')} run is missing (it defines 0 and 1)")
        roles = [role for role in ROLES if role in runs]
        ordered = [runs[role] for role in roles]
        refuse_different_prompts(ordered, where)
        for judge in judges or _common_judges(ordered):
            paired = paired_scores(ordered, judge)
            matrix = np.asarray(paired.matrix, dtype=float)
            group_settings = dataclasses.replace(settings, seed=settings.seed + index)  # independent groups
            ni = normalized_improvement(matrix[0], matrix[1],
                                        {role: matrix[i] for i, role in enumerate(roles) if i >= 2},
                                        group_settings)
            key = f"{name}/{judge}" if several else judge
            n_paired[key] = paired.n_paired
            direction = ordered[0].direction(judge)  # not needed for the ratio: None when unknown
            for position, role in enumerate(roles):
                scores = list(paired.per_run[position].scores.values())
                row: dict[str, Any] = {"judge": judge, "config": role}
                if several:
                    row["group"] = name
                row.update({
                    "mean": float(np.mean(scores)) if scores else None,
                    "stderr": standard_error(scores),
                    "n": len(scores),
                    **_ni_fields(role, ni),
                    "n_paired": paired.n_paired,
                    **{k: v for k, v in paired.per_run[position].counts().items() if k != "n_scored"},
                    "higher_is_better": direction,
                    "denominator": ni.denominator.to_dict(),
                    "note": _NOTES.get(ni.denominator_status),
                    "run": str(ordered[position].path),
                    "task": ordered[position].task,
                    # Beside the improvement over small_ft: the length change from small_ft, paired.
                    "mean_tokens": mean_tokens(ordered[position], paired.prompt_ids),
                    **length_difference(ordered[0], ordered[position], paired.prompt_ids, group_settings),
                })
                rows.append(row)
                if role in ni.distributions:
                    per_group_ni.setdefault((judge, role), []).append(
                        (ni.estimates[role].value, ni.distributions[role], paired.n_paired))
    data: dict[str, Any] = {"rows": rows, "n_paired": n_paired}
    if several:
        rows += _aggregate_rows(per_group_ni, len(groups), settings)
    data["bootstrap"] = {**dataclasses.asdict(settings), "method": "paired-bootstrap-percentile",
                         "resampled": "prompt ids, jointly across the runs of a group"}
    return data


def _ni_fields(role: str, ni: Any) -> dict[str, Any]:
    if role in ("small_ft", "large_ft"):
        defined = ni.denominator_status != DENOMINATOR_ZERO
        return {"normalized_improvement": (0.0 if role == "small_ft" else 1.0) if defined else None,
                "normalized_improvement_stderr": None, "normalized_improvement_ci": None}
    estimate = ni.estimates[role]
    return {
        "normalized_improvement": _finite(estimate.value),
        "normalized_improvement_stderr": _finite(estimate.standard_error),
        "normalized_improvement_ci": [estimate.ci_low, estimate.ci_high] if math.isfinite(estimate.ci_low) else None,
    }


def _aggregate_rows(per_group: Mapping[tuple[str, str], list[tuple[float, np.ndarray, int]]], n_groups: int,
                    settings: BootstrapSettings) -> list[dict[str, Any]]:
    """Figure 3: the mean normalized improvement over groups; groups were resampled independently,
    so the mean of their bootstrap distributions is the bootstrap of the mean."""
    rows = []
    for (judge, role), entries in per_group.items():
        value = float(np.mean([e[0] for e in entries]))
        distribution = np.mean(np.vstack([e[1] for e in entries]), axis=0)
        estimate = distribution_estimate(value, distribution, sum(e[2] for e in entries), settings.confidence_level)
        rows.append({
            "judge": judge, "config": role, "group": AGGREGATE, "mean": None, "stderr": None, "n": estimate.n,
            "normalized_improvement": _finite(estimate.value),
            "normalized_improvement_stderr": _finite(estimate.standard_error),
            "normalized_improvement_ci": [estimate.ci_low, estimate.ci_high]
            if math.isfinite(estimate.ci_low) else None,
            "n_groups": len(entries),
            "note": None if len(entries) == n_groups else
            f"averaged over {len(entries)} of {n_groups} groups (the others have no normalized improvement)",
        })
    return rows


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _common_judges(runs: Sequence[LoadedRun]) -> list[str]:
    judges = []
    for judge in runs[0].judge_names():
        try:
            for run in runs[1:]:
                run.resolve_judge(judge)
        except EFTEvalError:
            continue
        judges.append(judge)
    if not judges:
        raise EFTEvalError(f"no judge scored every run ({', '.join(str(r.path) for r in runs)})")
    return judges
