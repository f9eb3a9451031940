"""Generation for several grid points at once: one batched pass over shared components.

Grid points whose specs differ only in their delta weights (an alpha sweep: same base, same
fine-tuned and reference models, same prompt formats) compute the same component log-probs; only
the composition differs. Each prompt block is therefore decoded once with one row per (prompt,
point), each row composed with its own weights (`EFTModel.generate_ids(row_weights=...)`), and
every finished text goes into that point's `generations.jsonl` as the point's own run would have
written it. `point_models` hands lm-eval, for each point, a model that answers from that store.

Samples equal those of each point run alone: the rows of a prompt see the same padded block
(the blocks are cut as the `eft` backend cuts them) and sampling randomness depends only on
(seed, prompt, copy, step).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eft_eval.errors import EFTEvalError
from eft_eval.models import EFTSpec
from eft_eval.pipeline import GenerationStore, ResumableLM, request_key

if TYPE_CHECKING:
    from eft_eval.lm_eval import EFTLM


@dataclass
class PointJob:
    """A grid point's spec and the store its generations go to."""

    label: str
    spec: EFTSpec
    store: GenerationStore


def composition_key(spec: EFTSpec) -> str:
    """Equal for specs that differ at most in their delta weights: one batched pass serves them."""
    unweighted = dataclasses.replace(
        spec, name=None, deltas=tuple(dataclasses.replace(delta, weight=0.0) for delta in spec.deltas))
    return json.dumps(unweighted.to_dict(), sort_keys=True, default=str)


def request_copies(requests: Sequence[Any]) -> list[tuple[str, int]]:
    """(store key, copy number) of each `generate_until` request, numbered as `ResumableLM` numbers
    them: the n-th identical request (lm-eval's `repeats`) is copy n."""
    seen: Counter[str] = Counter()
    numbered = []
    for request in requests:
        key = request_key(request.args)
        numbered.append((key, seen[key]))
        seen[key] += 1
    return numbered


def generate_points(lm: EFTLM, requests: Sequence[Any], jobs: Sequence[PointJob], progress: bool = True) -> int:
    """Generate every (request, point) pair some point's store lacks with `lm` (an `EFTLM` of any
    of the points' specs): `lm.generate_rows`, each point's rows weighted by its deltas; each text is
    stored as soon as its block finishes. Returns the rows generated."""
    from tqdm.auto import tqdm

    keys = {composition_key(job.spec) for job in jobs} | {composition_key(lm.spec)}
    if len(keys) != 1:
        raise ValueError("generate_points needs specs that differ only in their delta weights")
    copies = request_copies(requests)
    todo: dict[int, list[int]] = {}
    for i, (key, copy) in enumerate(copies):
        for j, job in enumerate(jobs):
            if job.store.get(key, copy + 1) is None:
                todo.setdefault(i, []).append(j)
    total = sum(map(len, todo.values()))
    bar = tqdm(total=total, desc=f"sweep: generating ({len(jobs)} grid points batched)", unit="row",
               disable=not progress)

    def finished(block: list[tuple[int, int, str]]) -> None:
        # Stored per point as the block finishes: one fsync per point and block, not per row.
        by_point: dict[int, list[tuple[str, int, str]]] = {}
        for i, j, text in block:
            by_point.setdefault(j, []).append((*copies[i], text))
        for j, entries in by_point.items():
            jobs[j].store.add_many(entries)
        bar.update(len(block))

    weights = (lambda j: [delta.weight for delta in jobs[j].spec.deltas]) if lm.spec.deltas else None
    lm.generate_rows(requests, todo, finished, weights)
    bar.close()
    return total


def point_models(jobs: Sequence[PointJob], load_lm: Callable[[], Any], progress: bool = True) -> list[ResumableLM]:
    """The model lm-eval gets for each point of a group. A point's missing requests generate every
    point's rows of them in one batched pass (`generate_points`, with the model `load_lm` builds,
    once); each point answers from its own store, so the others find their rows stored."""
    loaded: list[Any] = []

    def fill(requests: list[Any]) -> None:
        loaded[:] = loaded or [load_lm()]
        generate_points(loaded[0], requests, jobs, progress=progress)

    return [ResumableLM(_generation_only, job.store, {"eft_spec": job.spec.to_string()}, fill=fill) for job in jobs]


def _generation_only() -> Any:
    # The group's model holds one point's weights: it must not score another point's requests.
    raise EFTEvalError("a sweep runs generation tasks only")


__all__ = ["PointJob", "composition_key", "generate_points", "point_models", "request_copies"]
