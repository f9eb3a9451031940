"""From a parsed request to rows for the engine, and from the rows' events to a response or a stream.

A chat request's messages are rendered per component exactly as `run` and `generate` render a
prompt (the fine-tuned model its chat template, pre-trained ones the plain dialogue format); a text
completion's prompt is continued verbatim (`raw`). Choice `i` of a request samples with `seed + i`,
so choice 0 is what `eft-eval generate --seed SEED` gives for the same prompt and settings.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from eft_eval.errors import EFTEvalError
from eft_eval.models import SamplingConfig, context_overflow, prompt_key
from eft_eval.serve import _responses as responses
from eft_eval.serve._engine import (
    BatchEngine,
    DoneEvent,
    EngineUnavailable,
    ErrorEvent,
    QueueFull,
    Row,
    RowEvent,
    TokenEvent,
)
from eft_eval.serve._schemas import APIError, ChatCompletionRequest, CompletionRequest


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (each a `serve` flag, named in the 400 it causes)."""

    max_tokens: int = 4096
    default_max_tokens: int = 256
    max_n: int = 16
    default_seed: int = 0


@dataclass
class Job:
    """One request's rows and where their events arrive (on the event loop)."""

    rows: list[Row]
    events: asyncio.Queue[tuple[int, RowEvent]]
    prompt_tokens: int
    request_id: str
    created: int
    chat: bool


def sampling_config(request: ChatCompletionRequest | CompletionRequest, limits: Limits, seed: int) -> SamplingConfig:
    limit = request.token_limit
    name = "max_completion_tokens" if getattr(request, "max_completion_tokens", None) is not None else "max_tokens"
    if limit is not None and limit > limits.max_tokens:
        raise APIError(400, f"{name} {limit} is over this server's limit of {limits.max_tokens} (--max-tokens-limit)",
                       param=name, code="max_tokens_limit")
    temperature = 1.0 if request.temperature is None else request.temperature
    return SamplingConfig(
        max_new_tokens=limit or min(limits.default_max_tokens, limits.max_tokens),
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else 1.0,
        top_p=1.0 if request.top_p is None else request.top_p,
        top_k=request.top_k or 0,
        seed=seed,
        stop=tuple(request.stop_strings),
    )


def chat_prompt(request: ChatCompletionRequest) -> Any:
    """A lone user message is the plain query `generate` takes (same rendering, same sampling key)."""
    messages = [m.as_message() for m in request.messages]
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return messages


async def start_job(
    engine: BatchEngine, request: ChatCompletionRequest | CompletionRequest, limits: Limits,
) -> Job:
    """Encode the prompt(s), queue one row per choice; the rows' events go to the job's queue."""
    problem = engine.problem()
    if problem is not None:
        raise APIError(503, problem, type="server_error", code="decoder_unavailable")
    chat = isinstance(request, ChatCompletionRequest)
    prompts: list[Any] = [chat_prompt(request)] if isinstance(request, ChatCompletionRequest) else request.prompts
    rows_wanted = request.n * len(prompts)
    if rows_wanted > limits.max_n:
        what = f"n {request.n}" if len(prompts) == 1 else f"n x prompts = {rows_wanted}"
        raise APIError(400, f"{what} is over this server's limit of {limits.max_n} (--max-n)", param="n",
                       code="n_limit")
    if not prompts:
        raise APIError(400, "prompt: at least one prompt is needed", param="prompt")
    base_seed = limits.default_seed if request.seed is None else request.seed
    try:
        configs = [sampling_config(request, limits, base_seed + i) for i in range(request.n)]
    except ValueError as error:
        raise APIError(400, str(error)) from None
    try:
        encoded = [await run_in_threadpool(engine.encode, prompt, not chat) for prompt in prompts]
    except (EFTEvalError, TemplateError, ValueError, TypeError, KeyError) as error:  # a template refusing the roles
        raise APIError(400, f"cannot render the prompt: {str(error).splitlines()[0] if str(error) else error}",
                       param="messages" if chat else "prompt") from None
    over = context_overflow(engine.model.forward_components, list(zip(*encoded)), configs[0].max_new_tokens)
    if over is not None:
        # Checked here: a row past the context would fail its whole batch, other clients' rows too.
        _, _, tokens, context = over
        raise APIError(400, f"the prompt ({tokens} tokens) plus max_tokens ({configs[0].max_new_tokens}) is over "
                       f"the model's context of {context} tokens", param="messages" if chat else "prompt",
                       code="context_length_exceeded")
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[int, RowEvent]] = asyncio.Queue()
    rows: list[Row] = []
    for prompt, prompt_ids in zip(prompts, encoded):
        for config in configs:
            index = len(rows)

            def sink(event: RowEvent, index: int = index) -> None:
                loop.call_soon_threadsafe(events.put_nowait, (index, event))

            rows.append(Row(prompt_ids, prompt_key(prompt), config, sink, ignore_eos=request.ignore_eos,
                            logprobs=request.logprob_count, stream=bool(request.stream)))
    lead = lead_component_index(engine)
    job = Job(rows, events, sum(len(ids[lead]) for ids in encoded),
              f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
              int(time.time()), chat)
    try:
        engine.submit(rows)
    except QueueFull as error:
        raise APIError(429, str(error), type="server_error", code="queue_full",
                       headers={"Retry-After": str(max(1, math.ceil(error.retry_after_s)))}) from None
    except EngineUnavailable as error:
        raise APIError(503, str(error), type="server_error") from None
    return job


def lead_component_index(engine: BatchEngine) -> int:
    """Index in `model.forward_components` of the component whose tokenizer decodes (its prompt is `usage`'s)."""
    model = engine.model
    lead = model.component_for("ft" if model.spec.deltas else "base")
    return next(i for i, component in enumerate(model.forward_components) if component is lead)


async def watch_disconnect(request: Request, rows: Sequence[Row]) -> None:
    """Cancel the rows when the client goes away (the body is read already: only a disconnect comes)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            for row in rows:
                row.cancelled.set()
            return


async def collect(job: Job, request: Request) -> list[responses.ChoiceResult]:
    """Wait for every row of a non-streamed request; cancel them if the client disconnects first."""
    watcher = asyncio.create_task(watch_disconnect(request, job.rows))
    results: list[responses.ChoiceResult | None] = [None] * len(job.rows)
    tokens: list[list[TokenEvent]] = [[] for _ in job.rows]
    try:
        while any(result is None for result in results):
            index, event = await job.events.get()
            if isinstance(event, TokenEvent):
                tokens[index].append(event)
            elif isinstance(event, DoneEvent):
                generation = event.generation
                results[index] = responses.ChoiceResult(generation.text, generation.finish_reason,
                                                        len(generation.token_ids), tokens[index])
            elif isinstance(event, ErrorEvent):
                raise APIError(event.status, event.message, type="server_error")
    finally:
        watcher.cancel()
        for row in job.rows:
            row.cancelled.set()  # no-op for finished rows; stops the rest if this task was cancelled
    return [result for result in results if result is not None]


def response_body(job: Job, choices: list[responses.ChoiceResult], model_name: str, engine: BatchEngine,
                  logprobs: bool) -> dict[str, Any]:
    return responses.completion(job.chat, job.request_id, job.created, model_name, choices, job.prompt_tokens,
                                logprobs, engine)


async def stream_events(
    job: Job, request: Request, model_name: str, engine: BatchEngine, stop: Sequence[str], logprobs: bool,
    include_usage: bool,
) -> AsyncIterator[str]:
    """Server-sent events: a chunk per text delta per choice, a last chunk with the finish reason,
    optionally a usage chunk, then `[DONE]`."""
    watcher = asyncio.create_task(watch_disconnect(request, job.rows))
    streamers = [responses.TextStreamer(engine.detokenize, stop) for _ in job.rows]
    unsent: list[list[TokenEvent]] = [[] for _ in job.rows]
    completion_tokens, done = 0, 0

    def chunk(index: int, text: str, finish_reason: str | None = None) -> str:
        lp = None
        if logprobs:
            build = responses.chat_logprobs if job.chat else responses.completion_logprobs
            lp, unsent[index] = build(unsent[index], engine), []
        content = ({"content": text} if text or finish_reason is None else {}) if job.chat else text
        return _sse(responses.chunk(job.chat, job.request_id, job.created, model_name, index, content, lp,
                                    finish_reason))

    try:
        if job.chat:
            for index in range(len(job.rows)):
                yield _sse(responses.chunk(True, job.request_id, job.created, model_name, index,
                                           {"role": "assistant", "content": ""}))
        while done < len(job.rows):
            index, event = await job.events.get()
            if isinstance(event, TokenEvent):
                unsent[index].append(event)
                delta = streamers[index].push(event.token)
                if delta:
                    yield chunk(index, delta)
            elif isinstance(event, DoneEvent):
                done += 1
                completion_tokens += len(event.generation.token_ids)
                yield chunk(index, streamers[index].finish(event.generation.text), event.generation.finish_reason)
            elif isinstance(event, ErrorEvent):
                yield _sse(APIError(event.status, event.message, type="server_error").body())
                return
        if include_usage:
            usage = responses.usage(job.prompt_tokens, completion_tokens)
            object_name = "chat.completion.chunk" if job.chat else "text_completion"
            yield _sse(responses.usage_chunk(job.request_id, job.created, model_name, object_name, usage))
        yield "data: [DONE]\n\n"
    finally:
        watcher.cancel()
        for row in job.rows:
            row.cancelled.set()


def _sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
