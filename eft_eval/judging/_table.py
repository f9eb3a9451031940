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
    return "\n".join([table, *(lines if costs else [])])


__all__ = ["format_results_table"]
