"""`eft-eval report DIR...`: aggregate judged samples again (no generation, no judging) and print a table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import write_json
from eft_eval.judging import load_judges, summarize_samples
from eft_eval.pipeline.outputs import RunFolder, now, read_json, read_samples


def report_folder(root: str | Path, include_paths: Sequence[str] = ()) -> dict[str, Any]:
    """Recompute DIR/results.json from DIR/samples.jsonl; other keys of results.json are kept."""
    folder = RunFolder(Path(root))
    rows = read_samples(folder.samples)
    if not rows:
        raise EFTEvalError(f"{folder.samples} holds no samples")
    run = read_json(folder.run) if folder.run.is_file() else {}
    names = list(run.get("judges") or dict.fromkeys(name for row in rows for name in row.get("judgments") or {}))
    judges = load_judges(names, list(include_paths)) if names else []
    previous = read_json(folder.results) if folder.results.is_file() else {}
    results = {
        **previous,
        "task": run.get("task") or rows[0].get("task"),
        "model": run.get("model") or rows[0].get("model"),
        "n_docs": len(rows),
        **summarize_samples(rows, judges),
        "reported": now(),
    }
    write_json(folder.results, results)
    return results


def format_table(reports: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """One line per (run, judge): mean ± standard error and the counts, as plain aligned text."""
    header = ("run", "task", "judge", "mean", "stderr", "scored", "abstained", "failed", "direction")
    lines: list[tuple[str, ...]] = [header]
    for label, results in reports:
        for judge, summary in (results.get("judges") or {}).items():
            lines.append((
                label, str(results.get("task")), judge, _number(summary.get("mean")), _number(summary.get("stderr")),
                str(summary.get("n_scored", 0)), str(summary.get("n_abstained", 0)), str(summary.get("n_failed", 0)),
                "higher is better" if summary.get("higher_is_better", True) else "lower is better",
            ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3g}"


__all__ = ["format_table", "report_folder"]
