"""The results table printed after judging: `eft-eval run`, `judge`, `report` and `sweep` print the same one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eft_eval.judging._ledger import describe_cost


def format_results_table(reports: Sequence[tuple[str, dict[str, Any]]], costs: bool = True) -> str:
    """One line per (run, judge): mean ± standard error and the counts, as plain aligned text; with
    `costs`, each run's judge cost below."""
    from eft_eval import stats

    def number(value: Any) -> str:
        return stats.format_number(value, significant=True, missing="-")

    rows = [
        (label, str(results.get("task") or "-"), judge, number(summary.get("mean")), number(summary.get("stderr")),
         summary.get("n_scored", 0), summary.get("n_abstained", 0), summary.get("n_failed", 0),
         "higher is better" if summary.get("higher_is_better", True) else "lower is better")
        for label, results in reports for judge, summary in (results.get("judges") or {}).items()
    ]
    header = ("run", "task", "judge", "mean", "stderr", "scored", "abstained", "failed", "direction")
    table = stats.format_table(header, rows)
    lines = [f"{label}: {describe_cost(results['cost'])}" for label, results in reports if results.get("cost")]
    return "\n".join([table, *length_lines(reports), *(lines if costs else [])])


def length_lines(reports: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Per run with recorded lengths: mean response tokens and the share cut off, each with its interval."""
    from eft_eval import stats

    rows = [(label, _estimate(length.get("response_tokens")), _estimate(length.get("cut_off"), percent=True))
            for label, results in reports if isinstance(length := results.get("length"), dict)]
    if not rows:
        return []
    return ["", stats.format_table(("run", "response tokens (mean, 95% CI)", "cut off at the limit"), rows)]


def _estimate(estimate: Any, percent: bool = False) -> str:
    """`41.2 (38.0-44.5)`, or as percentages; `-` when not recorded."""
    from eft_eval import stats

    if not isinstance(estimate, dict) or estimate.get("value") is None:
        return "-"
    scale, unit = (100.0, "%") if percent else (1.0, "")

    def number(key: str) -> str:
        value = estimate.get(key)
        return stats.format_number(None if value is None else value * scale, digits=1) + unit

    return f"{number('value')} ({number('ci_low')}-{number('ci_high')})"


__all__ = ["format_results_table"]
