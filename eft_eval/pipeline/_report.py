"""`eft-eval report DIR...`: aggregate judged samples again (no generation, no judging) and print a table."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import iter_jsonl, read_json_object, write_json
from eft_eval.judging import load_judges
from eft_eval.locking import NOT_WRITABLE, FolderNotWritableError, lock_folder
from eft_eval.pipeline._outputs import RunFolder, now, read_samples
from eft_eval.stats import STATUSES, summarize_samples

logger = logging.getLogger(__name__)


def report_folder(root: str | Path, include_paths: Sequence[str] = ()) -> dict[str, Any]:
    """Recompute DIR/results.json from DIR/samples.jsonl; other keys of results.json are kept."""
    folder = RunFolder(Path(root))
    rows = read_judged_samples(folder.samples)
    run = read_json_object(folder.run, missing_ok=True)
    names = list(run.get("judges") or dict.fromkeys(name for row in rows for name in row.get("judgments") or {}))
    judges = load_judges(names, list(include_paths)) if names else []
    for old, spec in zip(dict.fromkeys(names), judges):
        if old != spec.name:  # a run judged under a judge's former name (`harmlessness` -> `harm`)
            for row in rows:
                if old in (row.get("judgments") or {}) and spec.name not in row["judgments"]:
                    row["judgments"][spec.name] = row["judgments"].pop(old)
    previous = read_json_object(folder.results, missing_ok=True)
    results = {
        **previous,
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
        with lock_folder(folder.root, "eft-eval report"):
            write_json(folder.results, results)
    except FolderNotWritableError:
        logger.warning("%s: read-only folder: results recomputed without its lock; %s left as it was",
                       folder.root, folder.results.name)
    except OSError as error:
        if error.errno not in NOT_WRITABLE:
            raise
        logger.warning("%s: cannot write %s (%s): results recomputed, the file left as it was",
                       folder.root, folder.results.name, error.strerror)


def read_judged_samples(path: Path) -> list[dict[str, Any]]:
    """The rows of a samples.jsonl, checked: each has a `judgments` object whose entries have a known
    `status` and, when scored, a finite number as `score`. A foreign file is refused, not reported
    as empty results."""
    if not path.is_file():
        read_samples(path)  # its error: does not exist (run `eft-eval run` first) / is a folder
    rows = []
    for number, row in iter_jsonl(path):
        where = f"{path}:{number}"
        judgments = row.get("judgments")
        if not isinstance(judgments, dict):
            raise EFTEvalError(f"{where}: not a judged sample (no 'judgments' object); is this an eft-eval samples.jsonl?")
        for name, judgment in judgments.items():
            if not isinstance(judgment, dict) or judgment.get("status") not in STATUSES:
                status = judgment.get("status") if isinstance(judgment, dict) else judgment
                raise EFTEvalError(f"{where}: judgment {name!r} has status {status!r}; expected one of {', '.join(STATUSES)}")
            score = judgment.get("score")
            if judgment["status"] == "scored" and (isinstance(score, bool) or not isinstance(score, (int, float))
                                                   or not math.isfinite(score)):
                raise EFTEvalError(f"{where}: judgment {name!r} is scored but its score {score!r} is not a number")
        rows.append(row)
    if not rows:
        raise EFTEvalError(f"{path} holds no samples")
    return rows


def format_table(reports: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """One line per (run, judge): mean ± standard error and the counts, as plain aligned text."""
    from eft_eval import stats
    from eft_eval.judging._ledger import describe_cost

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
    return "\n".join([table, *costs])


__all__ = ["format_table", "report_folder"]
