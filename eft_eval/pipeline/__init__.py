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
    "RunConfig": "_run",
    "RunResult": "_run",
    "run_task": "_run",
    # The pieces of a run a sweep assembles itself (it generates many runs' samples in one pass).
    "resolve_spec": "_run",
    "run_record": "_run",
    "judge_folders": "_run",
    "evaluate_task": "_run",
    "check_run_folder": "_outputs",
    "open_run_folder": "_outputs",
    "GenerationStore": "_store",
    "request_key": "_store",
    "RunFolder": "_outputs",
    "report_folder": "_report",
    "format_table": "_report",
    "LoadedTask": "_tasks",
    "load_task": "_tasks",
    "our_task_entries": "_tasks",
}

__all__ = [
    "GenerationStore",
    "LoadedTask",
    "RunConfig",
    "RunFolder",
    "RunResult",
    "check_run_folder",
    "evaluate_task",
    "format_table",
    "judge_folders",
    "load_task",
    "open_run_folder",
    "our_task_entries",
    "report_folder",
    "request_key",
    "resolve_spec",
    "run_record",
    "run_task",
]

if TYPE_CHECKING:
    from eft_eval.pipeline._outputs import RunFolder, check_run_folder, open_run_folder
    from eft_eval.pipeline._report import format_table, report_folder
    from eft_eval.pipeline._run import (
        RunConfig,
        RunResult,
        evaluate_task,
        judge_folders,
        resolve_spec,
        run_record,
        run_task,
    )
    from eft_eval.pipeline._store import GenerationStore, request_key
    from eft_eval.pipeline._tasks import LoadedTask, load_task, our_task_entries


__getattr__ = lazy_exports(__name__, _EXPORTS)
