"""The generation stage of a sweep: every grid point's samples, before any judging.

Each grid point is prepared as `eft-eval run` prepares a run (`eft_eval.pipeline.prepare`: one
loaded task per generation setting, judge settings checked once). All points are generated in one
process with one `ModelCache` (each model loaded once; a model no later group needs is freed), and
points that differ only in their delta weights form one group: their run folders are opened
together (locked, identity checked, `run.json` written), and lm-eval's evaluation of each point
gets a model that answers every point of the group in one batched pass (`_batched.py`) the first
time a request is missing, and from the point's own `generations.jsonl` after that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eft_eval.errors import EFTEvalError
from eft_eval.sweep._study import GridPoint

if TYPE_CHECKING:
    from eft_eval.models import ModelCache
    from eft_eval.pipeline import PreparedRun


@dataclass
class PreparedPoint:
    """A grid point prepared as a run, and its samples once generated (judged later)."""

    point: GridPoint
    run: PreparedRun
    rows: list[dict[str, Any]] | None = None

    @property
    def label(self) -> str:
        return self.point.label


def generate_all(points: Sequence[PreparedPoint], say: Callable[[str], None], progress: bool = True) -> None:
    """Generate what the points lack (their `rows` set): one process, each model loaded once, shared
    passes batched. A point whose run finished (results.json, same --limit) is left to its run."""
    from eft_eval.models import ModelCache
    from eft_eval.sweep._batched import composition_key

    groups: dict[str, list[PreparedPoint]] = {}
    done = [item.label for item in points if _generation_finished(item)]
    for item in points:
        if item.label not in done:
            groups.setdefault(_group_key(item.run) + composition_key(item.run.spec), []).append(item)
    if done:
        say(f"sweep: {len(done)} run(s) already generated ({', '.join(done)}): their stored generations are "
            "read back, nothing is generated again")
    cache = ModelCache()
    ordered = list(groups.values())
    for position, group in enumerate(ordered):
        later = [c for g in ordered[position:] for item in g for _, c in item.run.spec.components()]
        cache.retain(later)  # free the models no remaining group needs
        labels = ", ".join(item.label for item in group)
        say("sweep: generating "
            f"{labels}" + (f" in one batched pass ({len(group)} grid points)" if len(group) > 1 else ""))
        _generate_group(group, cache, progress)


def _generation_finished(item: PreparedPoint) -> bool:
    """A run that wrote results.json for the same limit has all its generations: nothing to do."""
    record = item.run.folder.finished_record()
    return record is not None and record.get("limit") == item.point.run.get("limit")


def _group_key(prepared: PreparedRun) -> str:
    """What makes two points' requests identical: task, data, selection, generation settings."""
    config = prepared.config
    return repr((config.task, config.data_files, config.seed, config.limit, config.max_new_tokens, config.gen_kwargs,
                 config.batch_size))


def _generate_group(group: Sequence[PreparedPoint], cache: ModelCache, progress: bool) -> None:
    """Open each point's run folder, then evaluate each point; the first missing request generates
    every point's rows of it in one batched pass."""
    from eft_eval.pipeline import GenerationStore, generate, open_folder
    from eft_eval.sweep._batched import PointJob, point_models

    with ExitStack() as stack:
        jobs = []
        for item in group:
            folder = stack.enter_context(open_folder(item.run, "eft-eval sweep"))
            store = GenerationStore(folder.generations)
            stack.callback(store.close)
            jobs.append(PointJob(item.label, item.run.spec, store))
        for item, model in zip(group, point_models(jobs, lambda: _load_lm(group[0], cache), progress)):
            item.rows = generate(item.run, model)


def _load_lm(item: PreparedPoint, cache: ModelCache) -> Any:
    from eft_eval.lm_eval import EFTLM

    config = item.run.config
    try:
        return EFTLM(spec=item.run.spec, batch_size=config.batch_size, seed=config.seed, model_cache=cache)
    except OSError as error:  # as `eft-eval run`: a hub id that cannot be downloaded, a folder without weights
        raise EFTEvalError(f"cannot load the model of grid point {item.label}: {error}") from error


__all__ = ["PreparedPoint", "generate_all"]
