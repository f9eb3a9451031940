"""eft-eval's tasks as inspect samples: the prompts `eft-eval run TASK` generates for, one sample each.

    Task(dataset=task_samples("hh"), ...)                        # the paper's 256 HH prompts (hub)
    Task(dataset=task_samples("eli5", data_files=["q.jsonl"]), ...)  # the same selection, local files

The task's own loader draws them (`tasks/*.yaml`, `selection_seed`), so an inspect evaluation and an
eft-eval run of one task and seed judge the same prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample

from eft_eval.errors import EFTEvalError
from eft_eval.pipeline import load_task


def task_samples(task: str, *, data_files: Sequence[str | Path] | None = None, selection_seed: int = 0,
                 include_path: Sequence[str | Path] = ()) -> MemoryDataset:
    """The prompts of eft-eval task `task` (its `query` field) as an inspect dataset."""
    metadata: dict[str, Any] = {"selection_seed": selection_seed}
    if data_files:
        metadata["data_files"] = [str(Path(p).resolve()) for p in data_files]
    loaded = load_task(task, list(include_path), metadata)
    samples = []
    for index, doc in enumerate(loaded.task.eval_docs):
        if "query" not in doc:
            raise EFTEvalError(f"task {task}: document {index} has no `query` field (fields: {', '.join(doc)})")
        extra = {k: v for k, v in doc.items() if k != "query" and isinstance(v, (str, int, float, bool))}
        samples.append(Sample(input=str(doc["query"]), id=index, metadata=extra))
    return MemoryDataset(samples, name=task)


__all__ = ["task_samples"]
