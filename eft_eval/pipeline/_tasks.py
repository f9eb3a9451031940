"""Finding and loading tasks: eft-eval's own (`tasks/` + `--include-path`) first, then lm-eval's.

Indexing lm-eval's ~15,000 built-in task files takes seconds, so the built-in index is only built
when the task is not one of ours.

A task YAML in a user's folder may `include:` a file of eft-eval's `tasks/` folder by name
(`include: prompts.yaml`, `include: _judged_task.yaml`) without copying it: lm-eval looks for an
include beside the including file only, so an include found in neither place beside it is looked up
in the built-in folder (`builtin_include_tasks`), and such a task is loaded from its merged config.
"""

from __future__ import annotations

import contextlib
import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.plugins import builtin_dir, check_plugin_name, plugin_dirs, unrecognized_note


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
    entries = {name: entry for name, entry in manager.task_index.items() if entry.yaml_path is not None}
    for name, (path, config) in builtin_include_tasks(include_paths).items():
        entries.setdefault(name, _entry(name, path, config))
    return entries


def builtin_include_tasks(include_paths: Sequence[str | Path], resolve: bool = False) -> dict[str, tuple[Path, dict]]:
    """name -> (file, merged config) for the include folders' tasks whose `include:` names a built-in file.

    `resolve`: `!function` hooks imported (to run the task) rather than kept as text (to list it).
    An include found nowhere is an error naming the file and the include.
    """
    from lm_eval.tasks._yaml_loader import load_yaml  # lm-eval's own reader: same `!function` rules

    found: dict[str, tuple[Path, dict]] = {}
    builtin = builtin_dir("tasks")
    for folder in map(Path, include_paths):
        if not folder.is_dir() or folder.resolve() == builtin.resolve():
            continue
        for path in sorted(folder.glob("*.yaml")):
            try:
                raw = load_yaml(path, resolve_func=False, recursive=False)
            except Exception:  # not a task file (lm-eval passes over it too); others report their own
                continue
            includes = raw.get("include")
            includes = includes if isinstance(includes, list) else [includes] if includes else []
            wanted = [str(name) for name in includes if not (path.parent / str(name)).is_file()]
            if not isinstance(raw.get("task"), str) or not wanted:
                continue  # lm-eval reads it as it is
            missing = [name for name in wanted if not (builtin / name).is_file()]
            if missing:
                raise EFTEvalError(f"{path}: include {missing[0]!r} is neither beside it nor one of eft-eval's "
                                   f"task files ({builtin})")
            config = load_yaml(path, resolve_func=resolve, recursive=False)
            config.pop("include")
            merged: dict[str, Any] = {}
            for name in map(str, includes):
                where = path.parent / name if (path.parent / name).is_file() else builtin / name
                base = load_yaml(where, resolve_func=resolve, recursive=True)
                base.pop("task_list", None)
                merged.update(base)
            merged.update(config)  # the user's keys win, as in lm-eval's own includes
            found.setdefault(raw["task"], (path, merged))
    return found


def _entry(name: str, path: Path, config: dict[str, Any]) -> Any:
    """An lm-eval index entry, for listing (`load_task` builds such a task from its merged config)."""
    from lm_eval.tasks._index import Entry, Kind

    return Entry(name=name, kind=Kind.TASK, yaml_path=path, cfg=config)


def load_task(name: str, include_paths: Sequence[str | Path], metadata: dict[str, Any]) -> LoadedTask:
    """Build task `name`; `metadata` reaches its data loader (data_files, selection_seed)."""
    from lm_eval.tasks import TaskManager

    folders = [str(p) for p in task_folders(include_paths)]
    manager = TaskManager(include_path=folders, include_defaults=False, metadata=metadata)
    ours = name in manager.all_tasks
    if not ours and (user := builtin_include_tasks(include_paths, resolve=True).get(name)):
        return _load_merged(name, *user, manager)
    if not ours:
        manager = TaskManager(include_path=folders, metadata=metadata)
        if name not in manager.all_tasks:
            available = ", ".join(sorted(our_task_entries(include_paths)))
            raise EFTEvalError(
                f"unknown task {name!r}; eft-eval's tasks: {available} (or any lm-eval generation task: "
                "`eft-eval lm-eval --tasks list`; add your own YAML folder with --include-path)"
                + unrecognized_note(include_paths)
            )
    entry = manager.task_index[name]
    # The name becomes the default output folder (runs/TASK/...): it must not lead out of it.
    check_plugin_name(name, "task", str(entry.yaml_path or "lm-eval"))
    if entry.kind.name != "TASK":
        raise EFTEvalError(f"{name!r} is an lm-eval {entry.kind.name.lower()}: `eft-eval run` takes one task at a time")
    if metadata.get("data_files") and "custom_dataset" not in (entry.cfg or {}):
        raise EFTEvalError(f"task {name!r} reads its data from the hub only; --data-files works with eft-eval's tasks")
    try:
        with quiet_dataset_bars():
            tasks = manager.load([name])["tasks"]
    except EFTEvalError:
        raise
    except Exception as error:  # lm-eval and datasets raise many types; name the task and the reason
        raise EFTEvalError(f"cannot load task {name!r}: {error}") from error
    [task] = tasks.values()
    return _loaded(name, task, manager, str(entry.yaml_path) if ours else "lm-eval")


def _load_merged(name: str, path: Path, config: dict[str, Any], manager: Any) -> LoadedTask:
    """A user's task that includes a built-in file, built from its merged config."""
    check_plugin_name(name, "task", str(path))
    try:
        [task] = manager.load([config])["tasks"].values()
    except EFTEvalError:
        raise
    except Exception as error:  # as in load_task: name the task and the reason
        raise EFTEvalError(f"cannot load task {name!r} ({path}): {error}") from error
    return _loaded(name, task, manager, str(path))


def _loaded(name: str, task: Any, manager: Any, source: str) -> LoadedTask:
    if task.get_config("output_type") != "generate_until":
        raise EFTEvalError(
            f"task {name!r} is a {task.get_config('output_type')} task: there are no responses to judge "
            "(run it with `eft-eval lm-eval --model eft`)"
        )
    meta = task.get_config("metadata") or {}
    return LoadedTask(
        name=name, task=task, manager=manager, source=source,
        default_judges=[str(j) for j in meta.get("judges") or []], about=str(meta.get("about") or ""),
    )


@contextlib.contextmanager
def quiet_dataset_bars() -> Iterator[None]:
    """No `Generating test split: 0 examples` bars from datasets while a task reads its data: they
    count the library's internal steps, not anything of the run; the setting is restored after."""
    import datasets  # type: ignore[import-untyped]

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


__all__ = [
    "LoadedTask", "builtin_include_tasks", "load_task", "our_task_entries", "quiet_dataset_bars", "task_data_files",
    "task_folders",
]
