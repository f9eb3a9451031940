"""Where judge answers come from: the backend interface and the OpenAI-compatible backend."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol, runtime_checkable

from eft_eval.errors import EFTEvalError
from eft_eval.judging._cache import Completion
from eft_eval.judging._config import JudgeConfig
from eft_eval.judging._http import ChatCompletionsClient, rename_max_tokens
from eft_eval.judging._retry import (
    backoff_delay,
    classify,
    describe_error,
    retry_after_seconds,
)
from eft_eval.judging._spec import JudgeSpec, Message

logger = logging.getLogger(__name__)


class RequestFailed(Exception):
    """A request that still failed after every retry; the judgment is recorded as failed."""


class BatchesSubmitted(Exception):
    """Raised out of `judge_items` by a batch backend told to submit and not wait
    (`JudgeRunState.submit_only`): the requests are in recorded batches, no answer is in yet."""

    def __init__(self, message: str, estimate_usd: float | None = None) -> None:
        super().__init__(message)
        self.estimate_usd = estimate_usd
        """The worst-case cost of what was submitted (given by a caller that judged with a budget)."""


class JudgeBackend(Protocol):
    """Answers chat messages. `spec` lets a backend constrain the answer to valid scores."""

    async def complete(self, messages: list[Message], model: str, params: dict[str, Any],
                       spec: JudgeSpec) -> Completion: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CollectingBackend(JudgeBackend, Protocol):
    """A backend that answers once every unfinished judgment waits on it (the Batch API collects
    requests into batches). The engine starts every judgment at once, says how many answers to
    expect, and reports each judgment that needs no more answers."""

    def expect(self, judgments: int) -> None: ...

    def judgment_done(self, answers: int = 1) -> None: ...


class OpenAIBackend:
    """Chat completions from OpenAI or any OpenAI-compatible server (the REST call, see `_http.py`).

    At most `config.concurrency` requests are in flight; a request waiting to retry gives its slot
    back so that one throttled item does not slow the others.
    """

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        # Our own retry loop (see _retry.py): one setting for the number of tries, slots freed while waiting.
        self._client = ChatCompletionsClient(config.resolved_base_url(), config.resolved_api_key(),
                                             config.timeout, max_connections=config.concurrency)
        self._slots = asyncio.Semaphore(config.concurrency)
        self._fatal: EFTEvalError | None = None
        # Newer OpenAI models refuse `max_tokens` and ask for `max_completion_tokens`; learned once.
        self._use_max_completion_tokens = False

    async def complete(self, messages: list[Message], model: str, params: dict[str, Any],
                       spec: JudgeSpec) -> Completion:
        retries = self.config.max_retries
        for retry in range(retries + 1):
            if self._use_max_completion_tokens:
                params = rename_max_tokens(params)
            try:
                async with self._slots:
                    if self._fatal is not None:  # another request found the configuration wrong
                        raise self._fatal
                    body = await self._client.post({"model": model, "messages": messages, **params})
                    return completion_from_body(body, model)
            except Exception as error:  # sorted by classify(); anything unexpected is re-raised
                if isinstance(error, EFTEvalError):
                    raise
                if "max_tokens" in params and _asks_for_max_completion_tokens(error):
                    logger.info("the judge model wants max_completion_tokens instead of max_tokens; renaming")
                    self._use_max_completion_tokens = True
                    continue
                verdict = classify(error)
                if verdict == "fatal":
                    self._fatal = EFTEvalError(
                        f"the judge server refused the request ({describe_error(error)}); check the API key, "
                        f"--base-url and --judge-model {model!r}"
                    )
                    raise self._fatal from error
                if verdict == "unexpected":
                    raise
                if verdict == "give_up" or retry == retries:
                    tries = retry + 1
                    raise RequestFailed(f"{describe_error(error)} (after {tries} "
                                        f"tr{'y' if tries == 1 else 'ies'})") from error
                delay = backoff_delay(retry, self.config.backoff_base, self.config.backoff_max,
                                      retry_after_seconds(error))
                logger.debug("judge request failed (%s); retry %d in %.2fs", describe_error(error), retry + 1, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._client.aclose()


def _asks_for_max_completion_tokens(error: Exception) -> bool:
    return getattr(error, "status_code", None) == 400 and "max_completion_tokens" in str(error)


def completion_from_body(body: bytes | str | dict[str, Any], model: str) -> Completion:
    """Text and usage of a chat-completion body; a body without a message raises (and is retried)."""
    data = json.loads(body) if isinstance(body, (bytes, str)) else body
    if not isinstance(data, dict):
        raise ValueError("the response is not a JSON object")  # noqa: TRY004 (retried like other bad bodies)
    choices = data.get("choices")
    if not choices:
        raise ValueError("the response has no choices")
    text = choices[0]["message"].get("content")
    usage = data.get("usage") or {}
    counts = {key: _token_count(usage, key) for key in ("prompt_tokens", "completion_tokens")}
    counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
    return Completion(text=text or "", usage=counts, model=str(data.get("model") or model))


MAX_TOKEN_COUNT = 10**9
"""Most tokens one answer's usage may report: far above any context window, far below what would
make a cost overflow."""


def _token_count(usage: Any, key: str) -> int:
    """`usage[key]` as a whole number of tokens; a count that is not one (Infinity, -5, 1e308, text)
    is a bad body (asked again, then failed), never a cost of inf or below zero."""
    value = usage.get(key) if isinstance(usage, dict) else None
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 <= value <= MAX_TOKEN_COUNT and float(value).is_integer()):
        raise ValueError(f"the response's usage.{key} is {value!r:.40}, not a token count")
    return int(value)
