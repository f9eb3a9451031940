"""Batched EFT decoding with one KV cache per component.

Every component sees its own rendering of each prompt (own length, left padding and positions);
the generated token ids are shared: each step, the chosen token is appended to every component's
sequence and each component advances its cache by one position. Finished rows are dropped from
every cache so that long-running rows do not pay for finished ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from eft_eval.models.sampling import SamplingConfig, choose_next_tokens


@dataclass
class Generation:
    """One generated response."""

    text: str
    token_ids: list[int]
    finish_reason: str
    """`eos`, `stop` (a stop string) or `length` (max_new_tokens)."""


class ComponentStream:
    """Incremental, KV-cached forward passes of one model over a batch of left-padded prompts."""

    def __init__(self, model: Any, prompts: Sequence[Sequence[int]], pad_id: int, vocab_size: int) -> None:
        from transformers import DynamicCache

        self.model = model
        self.vocab_size = vocab_size
        self.device = next(model.parameters()).device
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            if prompt:
                ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
                mask[row, width - len(prompt):] = 1
        self.input_ids = ids.to(self.device)
        self.attention_mask = mask.to(self.device)
        positions = (self.attention_mask.cumsum(-1) - 1).clamp_(min=0)
        self.positions = positions
        self.next_position = positions[:, -1] + 1
        self.cache = DynamicCache(config=model.config)

    def _logprobs(self, logits: torch.Tensor) -> torch.Tensor:
        # Padded vocabulary rows (past the tokenizer) are cut off: they can never be chosen.
        return torch.log_softmax(logits[:, -1, : self.vocab_size].float(), dim=-1)

    @torch.inference_mode()
    def prefill(self) -> torch.Tensor:
        """Run the prompts; returns next-token log-probs `[rows, vocab]`."""
        out = self.model(
            input_ids=self.input_ids,
            attention_mask=self.attention_mask,
            position_ids=self.positions,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return self._logprobs(out.logits)

    @torch.inference_mode()
    def advance(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append one token per row; returns the next-token log-probs."""
        tokens = tokens.to(self.device).view(-1, 1)
        ones = torch.ones_like(tokens)
        self.attention_mask = torch.cat([self.attention_mask, ones], dim=-1)
        out = self.model(
            input_ids=tokens,
            attention_mask=self.attention_mask,
            position_ids=self.next_position.view(-1, 1),
            past_key_values=self.cache,
            use_cache=True,
        )
        self.next_position = self.next_position + 1
        return self._logprobs(out.logits)

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Drop every row not in `rows` (indices into the current batch) from the cache and masks."""
        rows = rows.to(self.device)
        self.cache.batch_select_indices(rows)
        self.attention_mask = self.attention_mask.index_select(0, rows)
        self.next_position = self.next_position.index_select(0, rows)


StepComposer = Callable[[Sequence[torch.Tensor]], torch.Tensor]


def decode(
    streams: Sequence[ComponentStream],
    compose: StepComposer,
    config: SamplingConfig,
    keys: Sequence[str],
    eos_ids: set[int],
    detokenize: Callable[[list[int]], str],
) -> list[Generation]:
    """Generate for one batch. `compose` maps the streams' log-probs to the EFT log-probs.

    `keys` identify each row's prompt for reproducible randomness (see `sampling.uniform_for`).
    """
    rows = len(keys)
    generated: list[list[int]] = [[] for _ in range(rows)]
    results: list[Generation | None] = [None] * rows
    active = list(range(rows))  # original row index of each live row, in cache order
    logprobs = [stream.prefill() for stream in streams]
    for step in range(config.max_new_tokens):
        composed = compose(logprobs)
        tokens = choose_next_tokens(composed, config, [keys[r] for r in active], step)
        still_running: list[int] = []
        for position, (row, token) in enumerate(zip(active, tokens.tolist())):
            finish = _finish_reason(generated[row], token, eos_ids, config, step, detokenize)
            if finish is None:
                generated[row].append(token)
                still_running.append(position)
                continue
            if finish[0] != "eos":
                generated[row].append(token)
            results[row] = Generation(text=finish[1], token_ids=generated[row], finish_reason=finish[0])
        if not still_running:
            break
        if len(still_running) < len(active):
            keep = torch.tensor(still_running, dtype=torch.long)
            for stream in streams:
                stream.keep_rows(keep)
            tokens = tokens.index_select(0, keep.to(tokens.device))
            active = [active[p] for p in still_running]
        logprobs = [stream.advance(tokens) for stream in streams]
    return [result for result in results if result is not None]


def _finish_reason(
    so_far: list[int],
    token: int,
    eos_ids: set[int],
    config: SamplingConfig,
    step: int,
    detokenize: Callable[[list[int]], str],
) -> tuple[str, str] | None:
    """(reason, final text) if this token ends the row, else None."""
    if token in eos_ids:
        return "eos", detokenize(so_far)
    if config.stop:
        text = detokenize([*so_far, token])
        cut = min((i for i in (text.find(s) for s in config.stop) if i >= 0), default=-1)
        if cut >= 0:
            return "stop", text[:cut]
    if step + 1 >= config.max_new_tokens:
        return "length", detokenize([*so_far, token])
    return None
