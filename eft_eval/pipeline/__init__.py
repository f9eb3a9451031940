"""Run a task: generate (lm-eval + the `eft` backend) -> judge -> aggregate -> write a run folder.

    from eft_eval.pipeline import RunConfig, run_task
    result = run_task(RunConfig(task="hh", preset="llama2:up", output="runs/hh-up"))

Public names are re-exported lazily: `eft-eval --help` imports `eft_eval.pipeline.commands`, and
that must not pull in torch or lm-eval through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "RunConfig": "run",
    "RunResult": "run",
    "run_task": "run",
    "RunFolder": "outputs",
    "report_folder": "report",
    "format_table": "report",
    "run_demo": "demo",
    "demo_spec": "demo",
    "LoadedTask": "tasks",
    "load_task": "tasks",
}

__all__ = [
    "LoadedTask",
    "RunConfig",
    "RunFolder",
    "RunResult",
    "demo_spec",
    "format_table",
    "load_task",
    "report_folder",
    "run_demo",
    "run_task",
]

if TYPE_CHECKING:
    from eft_eval.pipeline.demo import demo_spec, run_demo
    from eft_eval.pipeline.outputs import RunFolder
    from eft_eval.pipeline.report import format_table, report_folder
    from eft_eval.pipeline.run import RunConfig, RunResult, run_task
    from eft_eval.pipeline.tasks import LoadedTask, load_task


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'eft_eval.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f"eft_eval.pipeline.{_EXPORTS[name]}"), name)
