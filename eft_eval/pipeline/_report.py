"""`eft-eval report DIR...`: aggregate judged samples again (no generation, no judging) and print a table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eft_eval.fileio import write_json
from eft_eval.judging import format_results_table as format_table
from eft_eval.judging import load_judges
from eft_eval.locking import NOT_WRITABLE, FolderNotWritableError
from eft_eval.runfolder import RunFolder, now, read_run
from eft_eval.stats import summarize_samples

logger = logging.getLogger(__name__)


def report_folder(root: str | Path, include_paths: Sequence[str] = (), write: bool = True) -> dict[str, Any]:
    """DIR/results.json recomputed from DIR/samples.jsonl (other keys of results.json kept); `write`: into
    DIR/results.json too (`eft-eval report --rewrite-results`)."""
    from eft_eval.judging import discover_judges

    folder = RunFolder(Path(root))
    stored = read_run(folder.root, judges_here=discover_judges(list(include_paths))).check_samples()
    rows, run = stored.rows, stored.run
    names = list(run.get("judges") or stored.judge_names())
    judges = load_judges(names, list(include_paths)) if names else []
    results = {
        **stored.results,
        "task": stored.task,
        "model": run.get("model") or rows[0].get("model"),
        "n_docs": len(rows),
        **summarize_samples(rows, judges),
        "reported": now(),
    }
    if write:
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


__all__ = ["format_table", "report_folder"]
