"""`eft-eval run TASK`: prepare -> generate -> judge -> aggregate and write, in one run folder.

    result = run_task(RunConfig(task="hh_harmless", model="base=B,ft=F,ref=R", output="runs/x"))

Each stage leaves its output in the run folder before the next starts (`eft_eval.runfolder`), so
a killed run re-run with the same arguments reuses every finished generation and judgment. The
stages are separate calls around one `PreparedRun` (`_prepare.py`, `_generate.py`, `judge` and
`write_results` here): `run_task` chains them for one run; a sweep generates many runs at once,
then judges and writes each with the same calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import write_json, write_jsonl
from eft_eval.judging import (
    BatchesSubmitted,
    CostLedger,
    JudgeItem,
    JudgeRunState,
    describe_config,
    judge_items_sync,
    new_ledger,
)
from eft_eval.pipeline._generate import generate
from eft_eval.pipeline._prepare import PreparedRun, RunConfig, default_output, open_folder, prepare, resolve_spec
from eft_eval.runfolder import RunFolder, now
from eft_eval.stats import summarize_samples

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    folder: RunFolder
    results: dict[str, Any]
    rows: list[dict[str, Any]]


def run_task(config: RunConfig, state: JudgeRunState | None = None) -> RunResult:
    """Generate, judge and aggregate one task for one model; returns what was written. `state` is
    what a sweep decides for this run's judging (its budget spent so far, submit-only batches)."""
    return run_prepared(prepare(config), state)


def run_prepared(prepared: PreparedRun, state: JudgeRunState | None = None,
                 rows: list[dict[str, Any]] | None = None) -> RunResult:
    """The stages after `prepare`, in the locked run folder; `rows` generated already (a sweep's
    batched pass) are judged as they are."""
    state = state or JudgeRunState()
    with open_folder(prepared):
        rows = generate(prepared) if rows is None else rows
        ledger = new_ledger(prepared.judge_config, state.budget_spent)
        return write_results(prepared, judge(prepared, rows, ledger, state), ledger)


def judge(prepared: PreparedRun, rows: list[dict[str, Any]], ledger: CostLedger,
          state: JudgeRunState | None = None) -> list[dict[str, Any]]:
    """Every response judged by every judge (`rows` get their `judgments`), written to samples.jsonl
    at once: what was paid for is on disk before anything can fail summarizing it. A judging that
    stops says what it paid and had estimated (`JudgingStopped`); batches submitted without waiting
    what they may cost (`BatchesSubmitted`): a sweep's budget counts both."""
    items = [JudgeItem(query=row["query"], response=row["response"]) for row in rows]
    logger.info("judging %d responses with %s", len(rows), ", ".join(j.name for j in prepared.judges))
    try:
        judged = judge_items_sync(items, prepared.judges, prepared.judge_config, ledger=ledger,
                                  state=state or JudgeRunState())
    except BatchesSubmitted as submitted:
        raise BatchesSubmitted(str(submitted), ledger.estimate_usd) from None
    except EFTEvalError as error:
        raise ledger.stopped(error) from error
    replayed = sum(line.cached_requests for line in ledger.lines.values())
    if replayed:  # say plainly that a re-run asked nothing it had asked before
        asked = sum(line.requests for line in ledger.lines.values()) - replayed
        logger.info("judging: %d answers read back from the judge cache (nothing asked again), %d asked now",
                    replayed, asked)
    for row, judgments in zip(rows, judged):
        row["judgments"] = judgments
    write_jsonl(prepared.folder.samples, rows)
    return rows


def write_results(prepared: PreparedRun, rows: list[dict[str, Any]], ledger: CostLedger) -> RunResult:
    """results.json: every judge's summary, the judge settings and the cost ledger."""
    results = {
        "task": prepared.task.name,
        "model": prepared.spec.to_string(),
        "preset": prepared.config.preset,
        "n_docs": len(rows),
        **summarize_samples(rows, prepared.judges),  # judges, and by_category when documents have one
        "judge_config": describe_config(prepared.judge_config, prepared.judges),
        "cost": ledger.summary(),
        "finished": now(),
    }
    write_json(prepared.folder.results, results)
    return RunResult(folder=prepared.folder, results=results, rows=rows)


def cancel_run_batches(config: RunConfig) -> tuple[RunFolder, list[str]]:
    """`--judge-mode batch --cancel`: cancel the batches recorded in the run's folder (nothing is
    generated or judged); the folder and the ids of the batches cancelled."""
    from eft_eval.judging import cancel_batches

    folder = RunFolder(config.output or default_output(config, resolve_spec(config)))
    judge_config = config.judge
    if judge_config.batch.state is None:
        judge_config = judge_config.with_batch_state(folder.batch_state)
    folder.check()
    with folder.lock("eft-eval run"):
        return folder, cancel_batches(judge_config)


__all__ = ["RunConfig", "RunResult", "cancel_run_batches", "default_output", "judge", "resolve_spec", "run_prepared",
           "run_task", "write_results"]
