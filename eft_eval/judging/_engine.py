"""Judge many (query, response) items with several judges at once.

Each (item, judge) pair becomes one judgment: ask, read the answer, re-ask with the parse error
when it cannot be read, and end `scored`, `abstained` or `failed` (a failed request or an
unreadable last answer). Answers go through the persistent cache, so a re-run replays instead of
asking, and every judgment is handed to `on_result` as soon as it is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from eft_eval.judging._backends import (
    CollectingBackend,
    JudgeBackend,
    OpenAIBackend,
    RequestFailed,
)
from eft_eval.judging._cache import Completion, JudgeCache, cache_key
from eft_eval.judging._config import JudgeConfig, JudgeRunState
from eft_eval.judging._jury import combine_jury
from eft_eval.judging._ledger import BudgetExceeded, CostLedger, new_ledger
from eft_eval.judging._parse import ParsedAnswer, describe_range, parse_answer
from eft_eval.judging._samples import combine_samples, sample_params
from eft_eval.judging._spec import JudgeSpec, Message

Judgment = dict[str, Any]
"""One entry of `judgments` in samples.jsonl (docs/formats.md), plus `usage` and, when failed, `error`."""

YOUNG_COLLECTION_EVERY = 20_000
"""Allocations between young garbage collections while judging (Python's default is 700)."""

OnResult = Callable[[int, str, Judgment], None]
"""Called with (item index, judge name, judgment) as each judgment is known."""

logger = logging.getLogger(__name__)


def make_backend(config: JudgeConfig, state: JudgeRunState | None = None) -> JudgeBackend:
    """The backend `config` names: the Batch API, a local model or an OpenAI-compatible server."""
    if config.mode == "batch":
        from eft_eval.judging._batch import BatchBackend

        return BatchBackend(config, submit_only=state is not None and state.submit_only)
    if config.backend == "local":
        from eft_eval.judging._local import LocalBackend

        return LocalBackend(config)
    return OpenAIBackend(config)


@dataclass(frozen=True)
class JudgeItem:
    """One response to judge; for a pairwise judge, `response` is response A and `response_b` response B."""

    query: str
    response: str
    response_b: str | None = None


async def judge_items(
    items: Sequence[JudgeItem],
    judges: Sequence[JudgeSpec],
    config: JudgeConfig,
    on_result: OnResult | None = None,
    backend: JudgeBackend | None = None,
    ledger: CostLedger | None = None,
    state: JudgeRunState | None = None,
) -> list[dict[str, Judgment]]:
    """Judge every item with every judge; returns, per item, `{judge name: judgment}`.

    `ledger`, when given, records every answer's usage (and enforces `config.cost.budget`; a budget
    without a ledger gets its own, counting `state.budget_spent` as spent). `state` is what the
    caller decides for this run (a sweep: spent so far, submit batches without waiting). Requests
    run concurrently (at most `config.concurrency` in flight). A configuration error the server
    reports (bad key, unknown model) raises `EFTEvalError` and stops the run; every other failure
    ends as a `failed` judgment.
    """
    from tqdm import tqdm

    state = state or JudgeRunState()
    owned = backend is None
    backend = backend or make_backend(config, state)
    cache = JudgeCache(config.cache_path) if config.cache_path is not None else None
    found: list[dict[str, Judgment]] = [{} for _ in items]
    if ledger is None and config.cost.budget is not None:
        ledger = new_ledger(config, state.budget_spent)
    judge = _Judge(config, backend, cache, ledger)
    samples = config.samples
    jury = config.jury_models()
    answers = samples * max(1, len(jury))  # answers asked per judgment
    try:  # before anything is paid for: the estimate, and the budget it must fit
        _check_estimate(judge, ledger or new_ledger(config), items, judges)
    except BaseException:
        if cache is not None:
            cache.close()
        if owned:
            await backend.aclose()
        raise
    bar = tqdm(total=len(items) * len(judges), desc="judging", unit="judgment", disable=not config.progress,
               dynamic_ncols=True)
    # A collecting backend (the Batch API) answers once every unfinished judgment waits on it, so
    # every judgment starts at once and each one says when it is done.
    collecting = backend if isinstance(backend, CollectingBackend) else None
    if collecting is not None:
        collecting.expect(len(items) * len(judges) * answers)

    # Identical prompts (two responses with the same text, for the same query or for a judge that
    # does not show the query) are asked once; every item gets its own copy of the judgment.
    asked: dict[tuple[str, str], asyncio.Future[Judgment]] = {}

    async def judge_model(item: JudgeItem, spec: JudgeSpec, model: str | None) -> Judgment:
        if samples == 1:
            return await judge.judge(item, spec, 0, model)
        # K answers with distinct seeds, scored by the judge's aggregation
        return combine_samples(
            await asyncio.gather(*(judge.judge(item, spec, k, model) for k in range(samples))), spec)

    async def judge_once(item: JudgeItem, spec: JudgeSpec) -> Judgment:
        prompt = json.dumps(spec.render_messages(item.query, item.response, config.show_query, item.response_b))
        shared = asked.get((spec.name, prompt))
        if shared is not None and collecting is not None:
            collecting.judgment_done(answers)
        if shared is None:
            shared = asked[(spec.name, prompt)] = asyncio.get_running_loop().create_future()
            try:
                if not jury:
                    judgment = await judge_model(item, spec, None)
                else:  # each model's judgment, then the jury's score
                    found_by_model = await asyncio.gather(*(judge_model(item, spec, model) for model in jury))
                    judgment = combine_jury(dict(zip(jury, found_by_model)), spec, config.jury_aggregation)
                if collecting is not None:
                    collecting.judgment_done(answers)
                shared.set_result(judgment)
                return judgment  # the asker keeps the original; only duplicates pay for a copy
            except asyncio.CancelledError:
                shared.cancel()
                raise
            except BaseException as error:
                shared.set_exception(error)
                shared.exception()  # retrieved: asyncio must not log it a second time
                raise
        return copy.deepcopy(await shared)

    async def run_one(index: int, item: JudgeItem, spec: JudgeSpec) -> None:
        judgment = await judge_once(item, spec)
        found[index][spec.name] = judgment
        bar.update(1)
        if on_result is not None:
            on_result(index, spec.name, judgment)

    jobs = ((i, item, spec) for i, item in enumerate(items) for spec in judges)

    async def worker() -> None:
        for index, item, spec in jobs:  # shared iterator: each job is taken by one worker
            await run_one(index, item, spec)

    # A fixed pool of workers rather than a task per judgment, so memory does not grow with the
    # input. More workers than request slots: some wait out a backoff, others replay the cache.
    workers = min(len(items) * len(judges), max(4 * config.concurrency, 32))
    if collecting is not None:
        workers = len(items) * len(judges)
    try:
        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        try:
            with _fewer_young_collections():
                await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    finally:
        bar.close()
        if cache is not None:
            cache.close()
        if owned:
            await backend.aclose()
    # Judges in the order asked, whatever order the answers came in.
    return [{spec.name: per_item[spec.name] for spec in judges} for per_item in found]


@contextlib.contextmanager
def _fewer_young_collections(every: int = YOUNG_COLLECTION_EVERY) -> Iterator[None]:
    """Collect the youngest garbage generation every `every` allocations, not 700, while judging.

    With hundreds of requests in flight, every young collection found thousands of live request
    objects, traversed them and promoted them to older generations: 10-15% of the client's CPU at
    256 in flight (`eft-eval bench judge`). Reference counting still frees everything else at
    once; only cyclic garbage waits longer. The old threshold is back when judging ends.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], every), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def judge_items_sync(
    items: Sequence[JudgeItem],
    judges: Sequence[JudgeSpec],
    config: JudgeConfig,
    on_result: OnResult | None = None,
    ledger: CostLedger | None = None,
    state: JudgeRunState | None = None,
) -> list[dict[str, Judgment]]:
    """`judge_items` for callers without an event loop."""
    return asyncio.run(judge_items(items, judges, config, on_result, ledger=ledger, state=state))


def count_uncached(items: Sequence[JudgeItem], judges: Sequence[JudgeSpec], config: JudgeConfig) -> int:
    """How many first questions (distinct, per judge and sample) are not in the cache yet.

    Zero means a re-run can be answered from the cache alone: no endpoint needs to be reachable.
    """
    exists = config.cache_path is not None and Path(config.cache_path).exists()
    cache = JudgeCache(config.cache_path) if exists and config.cache_path is not None else None
    try:
        judge = _Judge(config, cast(JudgeBackend, None), cache)  # keys only: no request is made
        return sum(1 for _ in _uncached_first_requests(judge, items, judges))
    finally:
        if cache is not None:
            cache.close()


def _uncached_first_requests(
    judge: _Judge, items: Sequence[JudgeItem], judges: Sequence[JudgeSpec]
) -> Iterator[tuple[str, list[Message], dict[str, Any]]]:
    """(model, messages, parameters) of each distinct first question that the cache cannot answer."""
    seen: set[str] = set()
    jury: list[str | None] = [*judge.config.jury_models()] or [None]
    for item in items:
        for spec in judges:
            for sample in range(judge.config.samples):
                for member in jury:
                    model, messages, params = judge.first_request(item, spec, sample, member)
                    key = judge.key(spec, model, messages, params)
                    if key in seen or (judge.cache is not None and judge.cache.get(key) is not None):
                        continue
                    seen.add(key)
                    yield model, messages, params


def judge_model_names(spec: JudgeSpec, config: JudgeConfig) -> list[str]:
    """The models asked for each judgment: a jury's, or the one."""
    return config.jury_models() or [judge_model_name(spec, config)]


def judge_model_name(spec: JudgeSpec, config: JudgeConfig) -> str:
    """The model recorded in (and asked for) each judgment; a jury's models comma-separated."""
    if config.jury_models():
        return ",".join(config.jury_models())
    if config.backend == "local":
        model, gguf = config.resolved_local_model()
        return f"local:{gguf or model}"
    return config.judge_model or spec.judge_model


class _Judge:
    def __init__(self, config: JudgeConfig, backend: JudgeBackend, cache: JudgeCache | None,
                 ledger: CostLedger | None = None) -> None:
        self.config, self.backend, self.cache, self.ledger = config, backend, cache, ledger
        self.endpoint = config.endpoint()
        # Spec fingerprints by judge name: hashing a spec costs more than the rest of a cache key.
        self._fingerprints: dict[str, str] = {}

    def first_request(self, item: JudgeItem, spec: JudgeSpec, sample: int = 0,
                      model: str | None = None) -> tuple[str, list[Message], dict[str, Any]]:
        """(model, messages, parameters) of the first question of one judgment; `model` is one
        model of a jury (default the judge's one model)."""
        model = model or judge_model_name(spec, self.config)
        return model, spec.render_messages(item.query, item.response, self.config.show_query,
                                           item.response_b), sample_params(spec, sample)

    def key(self, spec: JudgeSpec, model: str, messages: list[Message], params: dict[str, Any]) -> str:
        fingerprint = self._fingerprints.get(spec.name) or self._fingerprints.setdefault(spec.name, spec.fingerprint())
        return cache_key(fingerprint, model, self.endpoint, messages, params)

    def mode_of(self, messages: list[Message]) -> str:
        """Where a request goes (and so its price): re-asks go live with `batch.fallback="live"`."""
        if self.config.mode == "batch" and not (self.config.batch.fallback == "live"
                                                 and any(m.get("role") == "assistant" for m in messages)):
            return "batch"
        return "live"

    async def judge(self, item: JudgeItem, spec: JudgeSpec, sample: int = 0, model: str | None = None) -> Judgment:
        model, messages, params = self.first_request(item, spec, sample, model)
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        raw, parsed = "", ParsedAnswer("failed", None, "", "no answer")
        attempts = 0
        for attempts in range(1, self.config.max_parse_retries + 2):
            try:
                completion = await self._ask(spec, model, messages, params)
            except RequestFailed as error:
                return _judgment(parsed, raw, model, attempts, usage, error=str(error))
            for key in usage:
                usage[key] += completion.usage.get(key, 0)
            raw, parsed = completion.text, parse_answer(completion.text, spec)
            if parsed.status != "failed":
                return _judgment(parsed, raw, model, attempts, usage)
            # Re-ask in the same conversation: at temperature 0 the same question gets the same answer.
            messages = [*messages, {"role": "assistant", "content": raw},
                        {"role": "user", "content": _reask(parsed, spec)}]
        return _judgment(parsed, raw, model, attempts, usage, error=parsed.error)

    async def _ask(self, spec: JudgeSpec, model: str, messages: list[Message], params: dict[str, Any]) -> Completion:
        key = self.key(spec, model, messages, params)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            if self.ledger is not None:
                self.ledger.record(spec.name, model, cached, cached=True)
            return cached
        reserved = 0.0
        if self.ledger is not None and self.ledger.budget is not None:
            reserved = self.ledger.worst_case(model, self.mode_of(messages), messages, params)
            try:
                self.ledger.reserve(reserved)
            except BudgetExceeded as error:
                raise RequestFailed(str(error)) from None
        try:
            completion = await self.backend.complete(messages, model, params, spec)
        finally:
            if self.ledger is not None:
                self.ledger.release(reserved)
        if self.cache is not None:
            self.cache.put(key, completion)  # committed now: a killed run keeps what it paid for
        if self.ledger is not None:
            self.ledger.record(spec.name, model, completion, cached=False)
        return completion


def _check_estimate(judge: _Judge, ledger: CostLedger, items: Sequence[JudgeItem],
                    judges: Sequence[JudgeSpec]) -> None:
    """Say what the requests not in the cache may cost when a judge model has a price (a local model
    costs nothing and says nothing), and with a budget, stop before asking anything if that could be
    more than the budget."""
    from eft_eval.errors import EFTEvalError

    left = 0
    estimate = 0.0
    unpriced: list[str] = []
    for model, messages, params in _uncached_first_requests(judge, items, judges):
        left += 1
        price = ledger.prices.price(model, judge.mode_of(messages))
        if price is None:
            unpriced += [model] if model not in unpriced else []
        elif price.input or price.output:  # a local model costs nothing: no tokens to count
            estimate += ledger.worst_case(model, judge.mode_of(messages), messages, params)
    if unpriced and ledger.budget is not None:
        raise EFTEvalError(f"cannot keep to --budget: judge model {unpriced[0]!r} has no price in "
                           f"{ledger.prices.path} (add it to a table given with --prices FILE)")
    if ledger.budget is not None:
        ledger.estimate_usd = estimate
        available = ledger.left_usd()
        assert available is not None
        if estimate > available:
            allowance = (f"--budget ${ledger.budget:.4f}" if not ledger.spent_before else
                         f"the ${available:.4f} left of --budget ${ledger.budget:.4f} (the sweep's earlier runs "
                         f"spent ${ledger.spent_before:.4f})")
            raise EFTEvalError(
                f"judging what is left ({left} requests not in the cache) needs up to ${estimate:.4f}, more than "
                f"{allowance}; nothing was asked (prompt tokens {ledger.token_count_method}, "
                "plus each judge's answer limit)"
            )
    if unpriced:
        logger.info("judge cost estimate: unknown: no price for judge model %s in %s (give one with --prices FILE)",
                    ", ".join(unpriced), ledger.prices.path)
    elif estimate > 0:
        logger.info("judge cost estimate: at most $%.4f for %d requests not in the cache (each answer as long as "
                    "its limit allows)%s", estimate, left,
                    f", within --budget ${ledger.budget:.4f}" if ledger.budget is not None
                    else "; --budget USD stops before spending more")


def _reask(parsed: ParsedAnswer, spec: JudgeSpec) -> str:
    if spec.pairwise:
        from eft_eval.judging._verdict import describe_format

        return (f"I could not read a verdict from your answer: {parsed.error}. Answer again in the format\n"
                f"{spec.reason_label}: <your analysis>\n{describe_format(spec)}")
    abstain = f', or "{spec.abstain_tokens[0]}" to abstain' if spec.abstain_tokens else ""
    return (
        f"I could not read a score from your answer: {parsed.error}. Answer again in the format\n"
        f"{spec.reason_label}: <your analysis>\n{spec.score_label}: <{describe_range(spec)}{abstain}, nothing else>"
    )


def _judgment(parsed: ParsedAnswer, raw: str, model: str, attempts: int, usage: dict[str, int],
              error: str | None = None) -> Judgment:
    status = "failed" if error is not None else parsed.status
    judgment: Judgment = {
        "status": status,
        # A failure or abstention has no score: never a 0 that would be averaged in.
        "score": parsed.score if status == "scored" else None,
        "reason": parsed.reason,
        "raw": raw,
        "judge_model": model,
        "attempts": attempts,
        "usage": dict(usage),
    }
    if parsed.verdict is not None and status == "scored":
        judgment["verdict"] = parsed.verdict
    if error is not None:
        judgment["error"] = error
    return judgment
