"""The generation step of a sweep: every grid point's generations, before any judging.

All points are generated in one process with one `ModelCache` (each model loaded once; a model
no later group needs is freed), and points that differ only in their delta weights form one
group, decoded in one batched pass (`_batched.py`). Each point's run folder is opened as
`eft-eval run` opens it (locked, its identity checked, `run.json` written) and its generations go
to its own `generations.jsonl`, so `run_task` afterwards finds them all and loads no model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.locking import lock_folder
from eft_eval.sweep._study import GridPoint
from eft_eval.sweep._sweep import SweepOptions, run_config, run_folder


@dataclass
class _Prepared:
    point: GridPoint
    config: Any
    spec: Any
    loaded: Any
    judges: Any


def generate_all(points: Sequence[GridPoint], options: SweepOptions, say: Callable[[str], None]) -> None:
    """Generate what the points lack: one process, each model loaded once, shared passes batched."""
    from eft_eval.models import ModelCache
    from eft_eval.sweep._batched import composition_key

    pending = [point for point in points if not _generation_finished(point, options)]
    if not pending:
        return
    tasks: dict[str, Any] = {}  # one loaded task per (task, data, seed): points share it read-only
    judges: dict[str, Any] = {}  # one parse of the judge files per (names, folders), shared likewise
    prepared = [_prepare(point, options, tasks, judges) for point in pending]
    _check_judges(prepared)
    groups: dict[str, list[_Prepared]] = {}
    for item in prepared:
        groups.setdefault(_group_key(item) + composition_key(item.spec), []).append(item)
    cache = ModelCache()
    ordered = list(groups.values())
    for position, group in enumerate(ordered):
        later = [c for g in ordered[position:] for item in g for _, c in item.spec.components()]
        cache.retain(later)  # free the models no remaining group needs
        labels = ", ".join(item.point.label for item in group)
        say(f"sweep: generating {labels}"
            + (f" in one batched pass ({len(group)} grid points)" if len(group) > 1 else ""))
        _generate_group(group, cache, options)


def _check_judges(prepared: Sequence[_Prepared]) -> None:
    """As `eft-eval run`: judge settings that cannot work (no key, a server that is not there) stop
    the sweep before hours of generation, once per distinct judge configuration."""
    from eft_eval.judging import preflight

    checked: set[str] = set()
    for item in prepared:
        config = item.config
        judges = item.judges
        key = repr((config.judge, [judge.name for judge in judges]))
        if key in checked:
            continue
        checked.add(key)
        if config.judge.backend == "openai":
            config.judge.resolved_api_key()
        else:
            config.judge.resolved_local_model()
        preflight(config.judge, judges)


def _generation_finished(point: GridPoint, options: SweepOptions) -> bool:
    """A run that wrote results.json for the same limit has all its generations: nothing to do."""
    import json

    folder = run_folder(options, point)
    if not (folder / "results.json").is_file() or not (folder / "run.json").is_file():
        return False
    try:
        record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(record.get("limit") == point.run.get("limit"))


def _prepare(point: GridPoint, options: SweepOptions, tasks: dict[str, Any], judges: dict[str, Any]) -> _Prepared:
    config = run_config(point, options)
    from eft_eval.judging import load_judges
    from eft_eval.pipeline import judge_folders, resolve_spec

    key = repr((config.task, config.include_paths, config.data_files, config.seed))
    if key not in tasks:
        tasks[key] = _load_task(config)
    loaded = tasks[key]
    # As `run_task` picks them: the run's judges, else the task's defaults, else all.
    names, folders = config.judges or loaded.default_judges or None, judge_folders(config.include_paths)
    judge_key = repr((names, folders))
    if judge_key not in judges:
        judges[judge_key] = load_judges(names, folders)
    return _Prepared(point, config, resolve_spec(config), loaded, judges[judge_key])


def _load_task(config: Any) -> Any:
    """The task as `run_task` loads it (same metadata: selection seed, data files)."""
    from eft_eval.pipeline import load_task

    metadata: dict[str, Any] = {"selection_seed": config.seed}
    if config.data_files:
        metadata["data_files"] = [str(Path(p).resolve()) for p in config.data_files]
    return load_task(config.task, config.include_paths, metadata)


def _group_key(item: _Prepared) -> str:
    """What makes two points' requests identical: task, data, selection, generation settings."""
    config = item.config
    return repr((config.task, config.data_files, config.seed, config.limit, config.max_new_tokens, config.gen_kwargs,
                 config.batch_size))


def _generate_group(group: Sequence[_Prepared], cache: Any, options: SweepOptions) -> None:
    """Open each point's run folder (locked, identity checked), then generate what any lacks."""
    from eft_eval.pipeline import (
        GenerationStore,
        check_run_folder,
        open_run_folder,
        run_record,
    )
    from eft_eval.sweep._batched import PointJob, generate_points, missing_rows

    first = group[0]
    with ExitStack() as stack:
        jobs = []
        for item in group:
            config = item.config
            root = Path(config.output)
            check_run_folder(root)
            stack.enter_context(lock_folder(root, "eft-eval sweep"))
            folder = open_run_folder(root, run_record(config, item.spec, item.loaded, item.judges))
            store = GenerationStore(folder.generations)
            stack.callback(store.close)
            jobs.append(PointJob(item.point.label, item.spec, store))
        # A task of its own: lm-eval applies the run's gen_kwargs to the task object in place, and
        # the shared one must keep the task's own settings for the run records (`run.json`).
        requests = collect_requests(first.config, _load_task(first.config))
        if not missing_rows(requests, jobs):
            return
        lm = _load_lm(first, cache)
        generate_points(lm, requests, jobs, progress=options.progress)


def _load_lm(item: _Prepared, cache: Any) -> Any:
    from eft_eval.lm_eval import EFTLM

    try:
        return EFTLM(spec=item.spec, batch_size=item.config.batch_size, seed=item.config.seed, model_cache=cache)
    except OSError as error:  # as `eft-eval run`: a hub id that cannot be downloaded, a folder without weights
        raise EFTEvalError(f"cannot load the model of grid point {item.point.label}: {error}") from error


class _Collected(Exception):
    """Raised by the collector to stop lm-eval once it has handed over its requests."""


def collect_requests(config: Any, loaded: Any) -> list[Any]:
    """The `generate_until` requests a run of `config` hands its model, without any model: lm-eval
    runs as in `eft-eval run` (same call) with a stand-in that records them and stops it."""
    from lm_eval.api.model import LM

    from eft_eval.lm_eval import MessageMarkerChat
    from eft_eval.pipeline import evaluate_task

    collected: list[Any] = []

    class Collector(MessageMarkerChat, LM):
        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            collected.extend(requests)
            raise _Collected

        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
            raise EFTEvalError("a sweep runs generation tasks only")

        loglikelihood_rolling = loglikelihood

    try:
        evaluate_task(dataclasses.replace(config, progress=False), loaded, Collector())
    except _Collected:
        pass
    return collected


__all__ = ["collect_requests", "generate_all"]
