"""Continuous batching: rows join a running batch at any step and leave it the step they end.

`decode` runs one batch from its prefill until every row ended. `ContinuousBatch` keeps a batch
running: between steps, new rows are prefilled on their own (shared prefill of identical prompts,
as `ComponentStream.prefill`) and their caches joined to the running ones (`ComponentStream.join`).
Rows that ended or were cancelled leave at once, but their cache rows stay until the next step: a
joining row takes one over (only its own cache is written), and those left over are selected away
then (under a steady stream, rows leave and join at the same steps, and the batch's caches are not
copied for either). Every row carries its own settings
(length, stop strings, EOS, temperature, top-p, top-k, seed), so any rows can share a step.

A row gets, token for token, what `decode` gives it in a batch of its own: its cache holds its
own prompt and tokens at its own positions (padding is masked), its next token is chosen from its
own composed distribution with its own settings and its own uniform `uniform_at(key, t)` at its
own step t (`choose_tokens_per_row`), and it ends by the one end-of-row rule (`RowOutputs`).

One step, with R rows running, L rows that left at the last step and J rows waiting to join:
  1. prefill: the J rows are prefilled (one pass per component over J rows);
  2. advance: the rows still running append the tokens chosen last step (one forward pass per
     component over R rows; over R + L rows when J > 0, as the L rows' slots are about to be
     reused and selecting them away first would copy every cache) -> next-token log-probs;
  3. join: the first min(J, L) joining rows take over the cache rows, masks, positions and
     log-probs of rows that left; the others are appended (caches left-padded to a common width,
     `join_cache_rows`); rows that left and that no joining row took are selected away -> R + J rows;
  4. choose: compose the components' log-probs, choose one token per row;
  5. end: each row records its token (`RowOutputs.add`); rows that ended leave, and so do rows
     cancelled before the next step: their slots stay, free, until step 3.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from eft_eval.models._decoding import (
    ComponentStream,
    Generation,
    RowOutputs,
    StepComposer,
    check_finite_choices,
    flag_not_finite,
)
from eft_eval.models._kv_cache import mergeable
from eft_eval.models._sampling import SamplingConfig, choose_tokens_per_row


@dataclass(frozen=True)
class JoiningRow:
    """A row to add to a running batch."""

    prompt_ids: Sequence[Sequence[int]]
    """`[component] -> token ids`, as `EFTModel.encode` gives for one prompt."""
    key: str
    """Its randomness key: `seeded_key(seed, prompt_key(prompt))`."""
    config: SamplingConfig
    """Its length limit, stop strings and sampling settings (`config.seed` is in `key`)."""
    eos_ids: frozenset[int]
    """Tokens that end it (empty: ignore EOS)."""


@dataclass
class BatchStep:
    """What one step chose: one token per row that took part, in `tags` order."""

    tags: list[Any]
    tokens: list[int]
    logprobs: torch.Tensor
    """`[len(tags), vocab]`: the EFT log-probs each token was chosen from (before temperature/top-p)."""
    finished: dict[Any, Generation]
    """The rows that ended at this step, by tag; a row ended by EOS does not keep its EOS token."""


@dataclass
class _Live:
    tag: Any
    row: JoiningRow
    outputs: RowOutputs
    step: int = 0


class ContinuousBatch:
    """A batch that rows join and leave between steps. Not thread-safe: one decoder thread drives it.

    `models` are the forward components' models (`EFTModel.forward_components`, same order as each
    row's `prompt_ids`); `compose` maps their log-probs to the EFT log-probs (`EFTModel.compose`).
    """

    def __init__(self, models: Sequence[Any], compose: StepComposer, pad_id: int, vocab_size: int,
                 detokenize: Callable[[list[int]], str]) -> None:
        self.models, self.compose = list(models), compose
        self.pad_id, self.vocab_size, self.detokenize = pad_id, vocab_size, detokenize
        self._live: list[_Live | None] = []  # cache order; None: a row that left, its slot free until step 3
        self._free: list[int] = []  # those slots, in cache order
        self._streams: list[ComponentStream] = []
        self._logprobs: list[torch.Tensor] = []  # per component, `[rows, vocab]`; stale while tokens pend
        self._pending: torch.Tensor | None = None  # last step's tokens of the rows still running

    def __len__(self) -> int:
        return len(self._live) - len(self._free)

    @property
    def tags(self) -> list[Any]:
        return [live.tag for live in self._live if live is not None]

    def join(self, rows: Sequence[JoiningRow], tags: Sequence[Any]) -> None:
        """Prefill `rows` and add them to the batch (`tags` name them in every later `BatchStep`)."""
        if not rows:
            return
        streams = [ComponentStream(model, [row.prompt_ids[i] for row in rows], self.pad_id, self.vocab_size)
                   for i, model in enumerate(self.models)]
        logprobs = [stream.prefill() for stream in streams]
        joining = [_Live(tag, row, RowOutputs(1, set(row.eos_ids), row.config, self.detokenize))
                   for tag, row in zip(tags, rows)]
        if not self._live:
            self._streams, self._logprobs, self._live = streams, logprobs, [*joining]
            return
        for stream in self._streams:
            if not mergeable(stream.cache):
                raise TypeError(f"{type(stream.model).__name__}'s KV cache cannot take rows joining a running "
                                "batch (sliding-window or recurrent layers): serve it with --scheduling batch")
        self._advance(compact=False)
        slots, self._free = self._free[:len(rows)], self._free[len(rows):]
        for stream, other in zip(self._streams, streams):
            stream.join(other, slots)
        self._logprobs = [_joined(old, new, slots) for old, new in zip(self._logprobs, logprobs)]
        for slot, live in zip(slots, joining):
            self._live[slot] = live
        self._live += joining[len(slots):]
        self._compact()
        if slots:
            for stream in self._streams:
                stream.trim_padding()  # a shorter row took a longer one's slot

    def step(self) -> BatchStep:
        """Choose one token for every row; rows that end leave the batch."""
        if not self._live:
            raise ValueError("step() on an empty batch: join rows first")
        self._advance()
        lives = [live for live in self._live if live is not None]  # all of them, once advanced
        composed = self.compose(self._logprobs, None)
        configs = [live.row.config for live in lives]
        chosen_tensor = flag_not_finite(
            choose_tokens_per_row(composed, configs, [live.row.key for live in lives],
                                  [live.step for live in lives]),
            composed)
        chosen = chosen_tensor.tolist()
        check_finite_choices(chosen, min(live.step for live in lives))
        step = BatchStep(self.tags, chosen, composed, {})
        ended = []
        for position, (live, token) in enumerate(zip(lives, chosen)):
            live.step += 1
            if not live.outputs.add(0, token):
                result = live.outputs.results[0]
                assert result is not None  # add() is False only when it ended the row
                step.finished[live.tag] = result
                ended.append(position)
        self._pending = chosen_tensor
        self._leave(ended)
        return step

    def cancel(self, tags: Collection[Any]) -> dict[Any, Generation]:
        """Take the rows named by `tags` out of the batch; returns what each had generated (`cancelled`)."""
        cancelled = {live.tag: Generation(self.detokenize(live.outputs.generated[0]), live.outputs.generated[0],
                                          "cancelled")
                     for live in self._live if live is not None and live.tag in tags}
        if cancelled:
            self._leave([p for p, live in enumerate(self._live) if live is not None and live.tag in cancelled])
        return cancelled

    def _leave(self, positions: list[int]) -> None:
        """The rows at `positions` leave; their slots stay, free, until the next join or advance
        (step 3 or 2 of the module's algorithm). A batch that no row is left in is emptied at once."""
        for position in positions:
            self._live[position] = None
        self._free = sorted([*self._free, *positions])
        if not len(self):
            self._live, self._free, self._streams, self._logprobs, self._pending = [], [], [], [], None

    def _compact(self) -> None:
        """Select away the free slots (rows that left and that no joining row took)."""
        if self._free:
            self._free = []
            self._keep([p for p, live in enumerate(self._live) if live is not None])

    def _keep(self, positions: list[int]) -> None:
        """Keep only the rows at `positions` (cache order), in caches, log-probs and pending tokens."""
        if len(positions) == len(self._live):
            return
        self._live = [self._live[p] for p in positions]
        keep = torch.tensor(positions, dtype=torch.long)
        for stream in self._streams:
            stream.keep_rows(keep)
            stream.trim_padding()
        if self._pending is not None:
            self._pending = self._pending.index_select(0, keep.to(self._pending.device))
        else:
            self._logprobs = [lp.index_select(0, keep.to(lp.device)) for lp in self._logprobs]

    def _advance(self, compact: bool = True) -> None:
        """Append last step's tokens to every running row (step 2 of the module's algorithm); with
        `compact`, the free slots are selected away first, else they advance too (a join reuses them)."""
        if compact:
            self._compact()
        if self._pending is None:
            return
        tokens, self._pending = self._pending, None
        self._logprobs = [stream.advance(tokens) for stream in self._streams]


def _joined(old: torch.Tensor, new: torch.Tensor, slots: list[int]) -> torch.Tensor:
    """`old`'s rows with the first `len(slots)` rows of `new` in rows `slots`, the rest of `new` appended."""
    new = new.to(old.device)
    if slots:
        old = old.index_copy(0, torch.tensor(slots, dtype=torch.long, device=old.device), new[:len(slots)])
    return torch.cat([old, new[len(slots):]])
