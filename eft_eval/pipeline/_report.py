"""`eft-eval report DIR...`: aggregate judged samples again (no generation, no judging) and print a table."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import write_json
from eft_eval.judging import load_judges
from eft_eval.locking import NOT_WRITABLE, FolderNotWritableError
from eft_eval.runfolder import STATUSES, RunFolder, StoredRun, now, read_run
from eft_eval.stats import summarize_samples

logger = logging.getLogger(__name__)


def report_folder(root: str | Path, include_paths: Sequence[str] = ()) -> dict[str, Any]:
    """Recompute DIR/results.json from DIR/samples.jsonl; other keys of results.json are kept."""
    from eft_eval.judging import discover_judges

    folder = RunFolder(Path(root))
    stored = read_run(folder.root, judges_here=discover_judges(list(include_paths)))
    check_judged(stored)
    rows, run = stored.rows, stored.run
    names = list(run.get("judges") or stored.judge_names())
    judges = load_judges(names, list(include_paths)) if names else []
    results = {
        **stored.results,
        "task": run.get("task") or rows[0].get("task"),
        "model": run.get("model") or rows[0].get("model"),
        "n_docs": len(rows),
        **summarize_samples(rows, judges),
        "reported": now(),
    }
    _write_results(folder, results)
    return results


def _write_results(folder: RunFolder, results: dict[str, Any]) -> None:
    """results.json, under the folder's lock (not while a run of this folder writes it).

    An archived run on a read-only disk or with read-only permissions needs no lock and no write to
    be reported: the recomputed results are shown, the file is left as it is, and the log says so.
    """
    try:
        with folder.lock("eft-eval report"):
            write_json(folder.results, results)
    except FolderNotWritableError:
        logger.warning("%s: read-only folder: results recomputed without its lock; %s left as it was",
                       folder.root, folder.results.name)
    except OSError as error:
        if error.errno not in NOT_WRITABLE:
            raise
        logger.warning("%s: cannot write %s (%s): results recomputed, the file left as it was",
                       folder.root, folder.results.name, error.strerror)


def check_judged(stored: StoredRun) -> None:
    """Each sample has a `judgments` object whose entries have a known `status` and, when scored, a
    finite number as `score`: a foreign file is refused, not reported as empty results."""
    for number, row in zip(stored.lines, stored.rows):
        where = f"{stored.samples_path}:{number}"
        judgments = row.get("judgments")
        if not isinstance(judgments, dict):
            raise EFTEvalError(f"{where}: not a judged sample (no 'judgments' object); is this an eft-eval "
                               "samples.jsonl?")
        for name, judgment in judgments.items():
            if not isinstance(judgment, dict) or judgment.get("status") not in STATUSES:
                status = judgment.get("status") if isinstance(judgment, dict) else judgment
                raise EFTEvalError(f"{where}: judgment {name!r} has status {status!r}; expected one of "
                                   f"{', '.join(STATUSES)}")
            score = judgment.get("score")
            if judgment["status"] == "scored" and (isinstance(score, bool) or not isinstance(score, (int, float))
                                                   or not math.isfinite(score)):
                raise EFTEvalError(f"{where}: judgment {name!r} is scored but its score {score!r} is not a number")


def format_table(reports: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """One line per (run, judge): mean ± standard error and the counts, as plain aligned text."""
    from eft_eval import stats
    from eft_eval.judging import describe_cost

    def number(value: Any) -> str:
        return stats.format_number(value, significant=True, missing="-")

    rows = [
        (label, str(results.get("task")), judge, number(summary.get("mean")), number(summary.get("stderr")),
         summary.get("n_scored", 0), summary.get("n_abstained", 0), summary.get("n_failed", 0),
         "higher is better" if summary.get("higher_is_better", True) else "lower is better")
        for label, results in reports for judge, summary in (results.get("judges") or {}).items()
    ]
    header = ("run", "task", "judge", "mean", "stderr", "scored", "abstained", "failed", "direction")
    table = stats.format_table(header, rows)
    costs = [f"{label}: {describe_cost(results['cost'])}" for label, results in reports if results.get("cost")]
    return "\n".join([table, *length_lines(reports), *costs])


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


__all__ = ["format_table", "report_folder"]
