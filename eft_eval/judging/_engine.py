"""Judge many (query, response) items with several judges at once.

Each (item, judge) pair becomes one judgment: ask, read the answer, re-ask with the parse error
when it cannot be read, and end `scored`, `abstained` or `failed` (a failed request or an
unreadable last answer). Answers go through the persistent cache, so a re-run replays instead of
asking, and every judgment is handed to `on_result` as soon as it is known.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eft_eval.judging._backends import JudgeBackend, RequestFailed, make_backend
from eft_eval.judging._cache import Completion, JudgeCache, cache_key
from eft_eval.judging._config import JudgeConfig
from eft_eval.judging._parse import ParsedAnswer, describe_range, parse_answer
from eft_eval.judging._spec import JudgeSpec, Message

Judgment = dict[str, Any]
"""One entry of `judgments` in samples.jsonl (docs/formats.md), plus `usage` and, when failed, `error`."""

OnResult = Callable[[int, str, Judgment], None]
"""Called with (item index, judge name, judgment) as each judgment is known."""


@dataclass(frozen=True)
class JudgeItem:
    """One response to judge."""

    query: str
    response: str


async def judge_items(
    items: Sequence[JudgeItem],
    judges: Sequence[JudgeSpec],
    config: JudgeConfig,
    on_result: OnResult | None = None,
    backend: JudgeBackend | None = None,
) -> list[dict[str, Judgment]]:
    """Judge every item with every judge; returns, per item, `{judge name: judgment}`.

    Requests run concurrently (at most `config.concurrency` in flight). A configuration error
    the server reports (bad key, unknown model) raises `EFTEvalError` and stops the run; every
    other failure ends as a `failed` judgment.
    """
    from tqdm import tqdm

    owned = backend is None
    backend = backend or make_backend(config)
    cache = JudgeCache(config.cache_path) if config.cache_path is not None else None
    found: list[dict[str, Judgment]] = [{} for _ in items]
    bar = tqdm(total=len(items) * len(judges), desc="judging", unit="judgment", disable=not config.progress,
               dynamic_ncols=True)
    judge = _Judge(config, backend, cache)

    async def run_one(index: int, item: JudgeItem, spec: JudgeSpec) -> None:
        judgment = await judge.judge(item, spec)
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
    try:
        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        try:
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


def judge_items_sync(
    items: Sequence[JudgeItem],
    judges: Sequence[JudgeSpec],
    config: JudgeConfig,
    on_result: OnResult | None = None,
) -> list[dict[str, Judgment]]:
    """`judge_items` for callers without an event loop."""
    return asyncio.run(judge_items(items, judges, config, on_result))


def judge_model_name(spec: JudgeSpec, config: JudgeConfig) -> str:
    """The model recorded in (and asked for) each judgment."""
    if config.backend == "local":
        model, gguf = config.resolved_local_model()
        return f"local:{gguf or model}"
    return config.judge_model or spec.judge_model


class _Judge:
    def __init__(self, config: JudgeConfig, backend: JudgeBackend, cache: JudgeCache | None) -> None:
        self.config, self.backend, self.cache = config, backend, cache
        self.endpoint = config.endpoint()

    async def judge(self, item: JudgeItem, spec: JudgeSpec) -> Judgment:
        model = judge_model_name(spec, self.config)
        params = dict(spec.sampling)
        messages = spec.render_messages(item.query, item.response, self.config.show_query)
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
        key = cache_key(spec.fingerprint(), model, self.endpoint, messages, params)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            return cached
        completion = await self.backend.complete(messages, model, params, spec)
        if self.cache is not None:
            self.cache.put(key, completion)  # committed now: a killed run keeps what it paid for
        return completion


def _reask(parsed: ParsedAnswer, spec: JudgeSpec) -> str:
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
    if error is not None:
        judgment["error"] = error
    return judgment
