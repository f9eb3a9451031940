"""Finding and loading tasks: eft-eval's own (`tasks/` + `--include-path`) first, then lm-eval's.

Indexing lm-eval's ~15,000 built-in task files takes seconds, so the built-in index is only built
when the task is not one of ours.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.plugins import check_plugin_name, plugin_dirs


@dataclass
class LoadedTask:
    """An lm-eval task ready to run, with the settings eft-eval reads from its metadata."""

    name: str
    task: Any  # lm_eval.api.task.Task
    manager: Any  # lm_eval.tasks.TaskManager
    source: str
    """The task's YAML file, or "lm-eval" for a built-in lm-eval task."""
    default_judges: list[str]
    about: str


def task_data_files(loaded: LoadedTask) -> list[Path]:
    """The local files the task's own configuration reads (`dataset_kwargs.data_files`, a local
    `dataset_path`), relative names resolved as the data set library does (from the working folder)
    or else against the task's folder; `--data-files` are recorded separately."""
    kwargs = loaded.task.get_config("dataset_kwargs") or {}
    named = kwargs.get("data_files") if isinstance(kwargs, dict) else None
    names = list(named.values()) if isinstance(named, dict) else [named]
    names.append(loaded.task.get_config("dataset_path"))
    folder = Path(loaded.source).parent if loaded.source != "lm-eval" else Path.cwd()
    found: list[Path] = []
    for name in (n for group in names for n in (group if isinstance(group, list) else [group])):
        if not isinstance(name, str) or not name:
            continue
        for base in (Path.cwd(), folder):
            pattern = base / name  # an absolute name stays itself
            matches = [Path(p) for p in sorted(glob.glob(str(pattern)))] if glob.has_magic(name) else [pattern]
            files = [p.resolve() for p in matches if p.is_file()]
            if files:
                found += [p for p in files if p not in found]
                break
    return found


def task_folders(include_paths: Sequence[str | Path] = ()) -> list[Path]:
    """The built-in `tasks/` folder and the user's folders."""
    folders = plugin_dirs("tasks", list(include_paths))
    for folder in folders:
        if not folder.is_dir():
            raise EFTEvalError(f"task include path {str(folder)!r} is not a folder")
    return folders


def our_task_entries(include_paths: Sequence[str | Path] = ()) -> dict[str, Any]:
    """name -> lm-eval index entry, for the tasks in eft-eval's folders only (quick)."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=[str(p) for p in task_folders(include_paths)], include_defaults=False)
    return {name: entry for name, entry in manager.task_index.items() if entry.yaml_path is not None}


def load_task(name: str, include_paths: Sequence[str | Path], metadata: dict[str, Any]) -> LoadedTask:
    """Build task `name`; `metadata` reaches its data loader (data_files, selection_seed)."""
    from lm_eval.tasks import TaskManager

    folders = [str(p) for p in task_folders(include_paths)]
    manager = TaskManager(include_path=folders, include_defaults=False, metadata=metadata)
    ours = name in manager.all_tasks
    if not ours:
        manager = TaskManager(include_path=folders, metadata=metadata)
        if name not in manager.all_tasks:
            available = ", ".join(sorted(our_task_entries(include_paths)))
            raise EFTEvalError(
                f"unknown task {name!r}; eft-eval's tasks: {available} (or any lm-eval generation task: "
                "`eft-eval lm-eval --tasks list`; add your own YAML folder with --include-path)"
            )
    entry = manager.task_index[name]
    # The name becomes the default output folder (runs/TASK/...): it must not lead out of it.
    check_plugin_name(name, "task", str(entry.yaml_path or "lm-eval"))
    if entry.kind.name != "TASK":
        raise EFTEvalError(f"{name!r} is an lm-eval {entry.kind.name.lower()}: `eft-eval run` takes one task at a time")
    if metadata.get("data_files") and "custom_dataset" not in (entry.cfg or {}):
        raise EFTEvalError(f"task {name!r} reads its data from the hub only; --data-files works with eft-eval's tasks")
    try:
        tasks = manager.load([name])["tasks"]
    except EFTEvalError:
        raise
    except Exception as error:  # lm-eval and datasets raise many types; name the task and the reason
        raise EFTEvalError(f"cannot load task {name!r}: {error}") from error
    [task] = tasks.values()
    if task.get_config("output_type") != "generate_until":
        raise EFTEvalError(
            f"task {name!r} is a {task.get_config('output_type')} task: there are no responses to judge "
            "(run it with `eft-eval lm-eval --model eft`)"
        )
    meta = task.get_config("metadata") or {}
    return LoadedTask(
        name=name, task=task, manager=manager, source=str(entry.yaml_path) if ours else "lm-eval",
        default_judges=[str(j) for j in meta.get("judges") or []], about=str(meta.get("about") or ""),
    )


__all__ = ["LoadedTask", "load_task", "our_task_entries", "task_data_files", "task_folders"]
