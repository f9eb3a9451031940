"""The generation stage: lm-eval's evaluation of the task, every response stored as it finishes.

lm-eval builds the requests, applies the task's chat template and filters; the model it is given
answers them. By default that is the `eft` backend behind `ResumableLM` (a re-run reuses every
stored generation and loads no model when none is missing); a sweep passes a model that answers
many grid points in one batched pass (`eft_eval.sweep`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.judging import QUERY_FIELDS
from eft_eval.lm_eval import Conversation, length_fields
from eft_eval.pipeline._prepare import PreparedRun

logger = logging.getLogger(__name__)


def generate(prepared: PreparedRun, model: Any = None) -> list[dict[str, Any]]:
    """The run's samples.jsonl rows, not yet judged, in document order; `model` answers lm-eval's
    requests (default: the resumable `eft` backend of the run's spec, storing into the run folder,
    which `open_folder` has opened)."""
    if model is not None:
        return _rows(prepared, evaluate_task(prepared, model))
    from eft_eval.lm_eval import EFTLM
    from eft_eval.pipeline._resumable import ResumableLM
    from eft_eval.pipeline._store import GenerationStore

    config, spec, folder = prepared.config, prepared.spec, prepared.folder

    def make_model() -> EFTLM:
        try:
            return EFTLM(spec=spec, batch_size=config.batch_size, seed=config.seed)
        except OSError as error:  # a hub id that cannot be downloaded, a folder without weights
            raise EFTEvalError(f"cannot load the model: {error}") from error

    store = GenerationStore(folder.generations)
    resumable = ResumableLM(make_model, store, {"eft_spec": spec.to_string()}, progress=config.progress)
    try:
        output = evaluate_task(prepared, resumable)
    finally:
        store.close()
    if resumable.reused:  # say plainly that stored generations were read back, not generated again
        logger.info("generations: %d read back from %s (nothing recomputed), %d new", resumable.reused,
                    folder.generations, resumable.generated)
    return _rows(prepared, output)


def evaluate_task(prepared: PreparedRun, model: Any) -> dict[str, Any]:
    """lm-eval's `simple_evaluate` of the task with `model`, as every run calls it."""
    import lm_eval

    config = prepared.config
    with _without_lm_eval_environment_report(), _labelled_prompt_bar(config.progress):
        output: dict[str, Any] | None = lm_eval.simple_evaluate(
            model=model, tasks=[prepared.task.task], task_manager=prepared.task.manager, limit=config.limit,
            log_samples=True, predict_only=True, apply_chat_template=True, gen_kwargs=prepared.gen_kwargs or None,
            bootstrap_iters=0, random_seed=config.seed, numpy_random_seed=config.seed,
            torch_random_seed=config.seed, fewshot_random_seed=config.seed,
        )
    if output is None:
        raise EFTEvalError("lm-eval returned no results")
    return output


@contextlib.contextmanager
def _without_lm_eval_environment_report() -> Iterator[None]:
    """Skip lm-eval's environment report inside `simple_evaluate`.

    It runs `pip list` and `git` in subprocesses (0.4-1.7 s on every run, the largest fixed cost of
    a sweep point) and prints "fatal: not a git repository" outside a checkout; run.json already
    records the package versions, and the run never reads these fields.
    """
    from lm_eval import evaluator

    saved = evaluator.add_env_info, evaluator.get_git_commit_hash
    evaluator.add_env_info = lambda storage: None
    evaluator.get_git_commit_hash = lambda: None
    try:
        yield
    finally:
        evaluator.add_env_info, evaluator.get_git_commit_hash = saved


@contextlib.contextmanager
def _labelled_prompt_bar(progress: bool) -> Iterator[None]:
    """lm-eval's bar over the documents it builds requests from says what it counts (not `0/3 it/s`),
    and is off with --no-progress."""
    from lm_eval.api import task

    saved = task.tqdm
    task.tqdm = functools.partial(saved, desc="building prompts", unit="prompt", disable=not progress)
    try:
        yield
    finally:
        task.tqdm = saved


def _rows(prepared: PreparedRun, output: dict[str, Any]) -> list[dict[str, Any]]:
    samples = sorted(output["samples"][prepared.task.name], key=lambda sample: sample["doc_id"])
    return [_sample_row(sample, prepared) for sample in samples]


def _sample_row(sample: dict[str, Any], prepared: PreparedRun) -> dict[str, Any]:
    """One samples.jsonl row (docs/formats.md) from an lm-eval logged sample."""
    doc = sample["doc"] if isinstance(sample.get("doc"), dict) else {}
    query = next((doc[k] for k in QUERY_FIELDS if isinstance(doc.get(k), str)), None)
    if query is None:
        # Another lm-eval task: the prompt it sent, as the user's last message.
        prompt = sample["arguments"][0][0]
        conversation = Conversation.from_context(prompt)
        query = conversation.messages[-1]["content"] if conversation else prompt
    response, generated = _first(sample.get("filtered_resps") or sample.get("resps")), _first(sample.get("resps"))
    return {
        "doc_id": sample["doc_id"],
        "task": prepared.task.name,
        "model": prepared.spec.to_string(),
        "query": query,
        "response": response if isinstance(response, str) else "",
        # The model's token count and finish reason, when it reports them (the `eft` backend does).
        **length_fields(generated),
        "judgments": {},
        "doc": doc,
    }


def _first(responses: Any) -> Any:
    """The first response of a logged sample's (per request, per repeat) nested lists."""
    while isinstance(responses, list) and responses:
        responses = responses[0]
    return responses


__all__ = ["evaluate_task", "generate"]
