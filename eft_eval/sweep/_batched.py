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
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.lm_eval import GeneratedText
from eft_eval.models import EFTSpec, prompt_key
from eft_eval.pipeline import GenerationStore, ResumableLM, request_key


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


def request_copies(requests: Sequence[Any]) -> list[tuple[str, int, str]]:
    """(store key, copy number, sampling key) of each `generate_until` request.

    Numbered exactly as the `eft` backend and `ResumableLM` number them: the n-th identical request
    (lm-eval's `repeats`) is copy n and gets its own randomness.
    """
    seen: Counter[str] = Counter()
    numbered = []
    for request in requests:
        key = request_key(request.args)
        numbered.append((key, seen[key], prompt_key((request.args[0], seen[key]))))
        seen[key] += 1
    return numbered


def missing_rows(requests: Sequence[Any], jobs: Sequence[PointJob]) -> list[tuple[int, int]]:
    """(request index, job index) of every generation some point's store lacks."""
    copies = request_copies(requests)
    return [(i, j) for i, (key, copy, _) in enumerate(copies) for j, job in enumerate(jobs)
            if job.store.get(key, copy + 1) is None]


def generate_points(lm: Any, requests: Sequence[Any], jobs: Sequence[PointJob], progress: bool = True) -> int:
    """Generate every missing (request, point) pair with `lm` (an `EFTLM` of any of the points'
    specs), a prompt block of `lm.batch_size` prompts at a time with all its points' rows in one
    batch; each text is stored as soon as its batch finishes. Returns the rows generated."""
    from lm_eval.models.utils import postprocess_generated_text
    from tqdm.auto import tqdm

    keys = {composition_key(job.spec) for job in jobs} | {composition_key(lm.spec)}
    if len(keys) != 1:
        raise ValueError("generate_points needs specs that differ only in their delta weights")
    copies = request_copies(requests)
    todo = missing_rows(requests, jobs)
    by_request: dict[int, list[int]] = {}
    for i, j in todo:
        by_request.setdefault(i, []).append(j)
    weighted = bool(lm.spec.deltas)
    # As the backend: one group per distinct gen_kwargs, longest prompts first, blocks of batch_size.
    groups: dict[str, list[int]] = {}
    for i in by_request:
        groups.setdefault(json.dumps(requests[i].args[1], sort_keys=True, default=str), []).append(i)
    bar = tqdm(total=len(todo), desc=f"sweep: generating ({len(jobs)} grid points batched)", unit="row",
               disable=not progress)
    for indices in groups.values():
        config = lm._sampling_config(requests[indices[0]].args[1], requests[indices[0]].task_name)
        prompts = {i: lm._generation_prompt(requests[i].args[0], config.max_new_tokens)[0] for i in indices}
        indices.sort(key=lambda i: -max(len(ids) for ids in prompts[i]))
        for start in range(0, len(indices), max(1, lm.batch_size)):
            rows = [(i, j) for i in indices[start:start + lm.batch_size] for j in by_request[i]]
            width = len(prompts[rows[0][0]])
            outputs = lm.model.generate_ids(
                [[prompts[i][c] for i, _ in rows] for c in range(width)], config,
                [copies[i][2] for i, _ in rows], batch_size=len(rows),
                row_weights=[[d.weight for d in jobs[j].spec.deltas] for _, j in rows] if weighted else None,
            )
            # Stored per point as the block finishes: one fsync per point and block, not per row.
            finished: dict[int, list[tuple[str, int, str]]] = {}
            for (i, j), output in zip(rows, outputs):
                text = GeneratedText.of(postprocess_generated_text(output.text, list(config.stop), None), output)
                finished.setdefault(j, []).append((copies[i][0], copies[i][1], text))
            for j, entries in finished.items():
                jobs[j].store.add_many(entries)
            bar.update(len(rows))
    bar.close()
    return len(todo)


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


__all__ = ["PointJob", "composition_key", "generate_points", "missing_rows", "point_models", "request_copies"]
