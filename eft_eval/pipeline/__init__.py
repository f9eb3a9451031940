"""Run a task: generate (lm-eval + the `eft` backend) -> judge -> aggregate -> write a run folder.

    from eft_eval.pipeline import RunConfig, run_task
    result = run_task(RunConfig(task="hh", preset="llama2:up", output="runs/hh-up"))

Public names are re-exported lazily: `eft-eval --help` imports `eft_eval.pipeline.commands`, and
that must not pull in torch or lm-eval through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "RunConfig": "_prepare",
    "RUN_KEYS": "_settings",
    "RUN_SETTINGS": "_settings",
    "run_command": "_settings",
    "RunResult": "_run",
    "run_task": "_run",
    "run_prepared": "_run",
    "cancel_run_batches": "_run",
    # The stages of a run, which a sweep composes (it generates many runs' samples in one pass).
    "PreparedRun": "_prepare",
    "Loaded": "_prepare",
    "prepare": "_prepare",
    "open_folder": "_prepare",
    "generate": "_generate",
    "judge": "_run",
    "write_results": "_run",
    "resolve_spec": "_prepare",
    "judge_folders": "_prepare",
    "run_record": "_prepare",
    "ResumableLM": "_resumable",
    "GenerationStore": "_store",
    "request_key": "_store",
    "report_folder": "_report",
    "format_table": "_report",
    "LoadedTask": "_tasks",
    "load_task": "_tasks",
    "our_task_entries": "_tasks",
}

__all__ = [
    "RUN_KEYS", "RUN_SETTINGS",
    "GenerationStore", "Loaded", "LoadedTask", "PreparedRun", "ResumableLM", "RunConfig", "RunResult",
    "cancel_run_batches", "format_table", "generate", "judge", "judge_folders", "load_task", "open_folder",
    "our_task_entries", "prepare", "report_folder", "request_key", "resolve_spec", "run_command", "run_prepared",
    "run_record", "run_task", "write_results",
]

if TYPE_CHECKING:
    from eft_eval.pipeline._generate import generate
    from eft_eval.pipeline._prepare import (
        Loaded,
        PreparedRun,
        RunConfig,
        judge_folders,
        open_folder,
        prepare,
        resolve_spec,
        run_record,
    )
    from eft_eval.pipeline._report import format_table, report_folder
    from eft_eval.pipeline._resumable import ResumableLM
    from eft_eval.pipeline._run import RunResult, cancel_run_batches, judge, run_prepared, run_task, write_results
    from eft_eval.pipeline._settings import RUN_KEYS, RUN_SETTINGS, run_command
    from eft_eval.pipeline._store import GenerationStore, request_key
    from eft_eval.pipeline._tasks import LoadedTask, load_task, our_task_entries


__getattr__ = lazy_exports(__name__, _EXPORTS)
