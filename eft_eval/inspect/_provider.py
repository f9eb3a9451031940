"""`EFTModelAPI`: inspect's `eft` model provider, an EFT model decoded by the serve engine.

Inspect calls `generate` once per sample, many samples at a time (up to `max_connections`). Each
call becomes one `serve.Row` per choice on one `BatchEngine`: its decoder thread gathers the rows
that arrive together into one batch of the KV-cached EFT decoder, so concurrent samples share
forward passes instead of queueing one by one. Randomness is per (seed, prompt, step), so a sample
gets the same tokens whatever its batch mates: what `EFTModel.generate` gives for that prompt and
seed. Log-probs are the EFT distribution's (before temperature and top-p), as `EFTModel.score`
computes them.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    TopLogprob,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from eft_eval.errors import EFTEvalError
from eft_eval.inspect._config import DEFAULT_MAX_TOKENS, Request, chat_prompt, model_spec, sampling_request
from eft_eval.models import EFTModel, Generation, context_overflow, prompt_key
from eft_eval.serve import BatchEngine, DoneEvent, ErrorEvent, Row, RowEvent, TokenEvent, lead_component_index

_STOP_REASONS = {"eos": "stop", "stop": "stop", "length": "max_tokens"}


class EFTModelAPI(ModelAPI):
    """An EFT model (`-M` spec keys, `-M spec=FILE` or `-M preset=NAME`) as an inspect model."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 (inspect's own signature)
        **model_args: Any,
    ) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        if base_url is not None:
            raise EFTEvalError(f"eft model: base_url {base_url!r}: an EFT model runs in this process, not behind a "
                               "server (for a server use `eft-eval serve` and inspect's openai-api provider)")
        self.spec, self.options = model_spec(model_args)
        self.model = EFTModel.from_spec(self.spec)
        self.engine = BatchEngine(self.model, max_batch_size=self.options.batch_size,
                                  batch_wait_s=self.options.batch_wait_s)
        self._lead = lead_component_index(self.engine)  # the component whose prompt is `usage`'s, as serve counts it
        self._started = False
        self._start_lock = threading.Lock()

    def _running_engine(self) -> BatchEngine:
        with self._start_lock:
            if not self._started:
                self.engine.start()
                self._started = True
        return self.engine

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        if tools:
            raise EFTEvalError(f"eft model: {len(tools)} tool(s) offered ({tools[0].name}, ...): EFT models do not "
                               "call tools")
        request = sampling_request(config)
        prompt = chat_prompt(input)
        engine = self._running_engine()
        prompt_ids = await asyncio.to_thread(engine.encode, prompt)
        over = context_overflow(self.model.forward_components, [[ids] for ids in prompt_ids],
                                request.configs[0].max_new_tokens)
        if over is not None:  # a row past the context would fail every sample of its batch
            _, _, tokens, context = over
            raise EFTEvalError(f"eft model: the prompt ({tokens} tokens) plus max_tokens "
                               f"({request.configs[0].max_new_tokens}) is over the model's context of {context} tokens")
        generations, token_events = await self._decode(engine, prompt_ids, prompt_key(prompt), request)
        choices = [self._choice(generation, events, request) for generation, events in zip(generations, token_events)]
        output_tokens = sum(len(g.token_ids) for g in generations)
        return ModelOutput(
            model=self.model_name,
            choices=choices,
            usage=ModelUsage(input_tokens=len(prompt_ids[self._lead]), output_tokens=output_tokens,
                             total_tokens=len(prompt_ids[self._lead]) + output_tokens),
            metadata={"eft": {
                "finish_reasons": [g.finish_reason for g in generations],
                "seeds": [c.seed for c in request.configs],
                # Counters of the shared engine when this sample finished: rows / batches is the
                # mean batch size so far (tests and `eft-eval bench inspect` read them).
                "engine": {"batches": engine.batches, "rows": engine.rows},
            }},
        )

    async def _decode(self, engine: BatchEngine, prompt_ids: list[list[int]], key: str,
                      request: Request) -> tuple[list[Generation], list[list[TokenEvent]]]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[int, RowEvent]] = asyncio.Queue()
        rows = []
        for index, config in enumerate(request.configs):
            def sink(event: RowEvent, index: int = index) -> None:
                loop.call_soon_threadsafe(events.put_nowait, (index, event))

            rows.append(Row(prompt_ids, key, config, sink, logprobs=request.logprobs))
        results: list[Generation | None] = [None] * len(rows)
        tokens: list[list[TokenEvent]] = [[] for _ in rows]
        engine.submit(rows)
        try:
            while any(result is None for result in results):
                index, event = await events.get()
                if isinstance(event, TokenEvent):
                    tokens[index].append(event)
                elif isinstance(event, DoneEvent):
                    results[index] = event.generation
                elif isinstance(event, ErrorEvent):
                    raise RuntimeError(f"eft model: {event.message}")
        finally:
            for row in rows:
                row.cancelled.set()  # no-op for finished rows; stops the others when inspect cancels a sample
        return [result for result in results if result is not None], tokens

    def _choice(self, generation: Generation, events: list[TokenEvent], request: Request) -> ChatCompletionChoice:
        logprobs = None
        if request.logprobs is not None:
            logprobs = Logprobs(content=[
                Logprob(token=self.engine.token_text(event.token), logprob=event.logprob,
                        bytes=self.engine.token_bytes(event.token),
                        top_logprobs=[TopLogprob(token=self.engine.token_text(token), logprob=value,
                                                 bytes=self.engine.token_bytes(token)) for token, value in event.top])
                for event in events
            ])
        return ChatCompletionChoice(
            message=ChatMessageAssistant(content=generation.text, model=self.model_name, source="generate"),
            stop_reason=_STOP_REASONS.get(generation.finish_reason, "unknown"),  # type: ignore[arg-type]
            logprobs=logprobs,
        )

    def max_tokens(self) -> int | None:
        return DEFAULT_MAX_TOKENS

    def max_connections(self) -> int:
        """Two batches of samples in flight: the next batch waits ready while one decodes (inspect
        uses this when adaptive connections are off; `--max-connections N` sets it)."""
        return 2 * self.options.batch_size

    def close(self) -> None:
        if self._started:
            self.engine.stop()


__all__ = ["EFTModelAPI"]
