"""Batched EFT decoding with one KV cache per component.

Every component sees its own rendering of each prompt (own length, left padding and positions);
the generated token ids are shared: each step, the chosen token is appended to every component's
sequence and each component advances its cache by one position. Finished rows are dropped from
every cache so that long-running rows do not pay for finished ones.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from eft_eval.errors import EFTEvalError
from eft_eval.models._kv_cache import cache_kwargs, drop_leading_slots, join_cache_rows
from eft_eval.models._sampling import SamplingConfig, choose_next_tokens

NOT_FINITE = -1
"""The token id `flag_not_finite` puts in a row whose distribution is not a distribution."""

FINISH_REASONS = {"eos": "stop", "stop": "stop", "length": "length", "cancelled": "stop"}
"""`Generation.finish_reason` in the OpenAI API's words: EOS and stop strings are `stop`, the length limit `length`."""


class NotFiniteError(EFTEvalError):
    """The composed distribution holds NaN or gives no token a finite log-prob (weights too large
    for float32 arithmetic, or a component whose own log-probs are not finite)."""


def flag_not_finite(tokens: torch.Tensor, composed: torch.Tensor) -> torch.Tensor:
    """`tokens` with `NOT_FINITE` in every row of `composed` that is not a distribution.

    A row is fine when its largest log-prob is finite: `amax` propagates NaN, is +inf for a +inf
    entry and -inf only when every entry is -inf. Single -inf entries (top-p, padded vocabulary)
    are fine. Done on the device and read with the tokens the decoder reads anyway, so the check
    adds no host synchronisation.
    """
    finite = torch.isfinite(composed.amax(dim=-1))
    return torch.where(finite.to(tokens.device), tokens, torch.full_like(tokens, NOT_FINITE))


def check_finite_choices(tokens: Sequence[int] | Sequence[Sequence[int]], step: int) -> None:
    """Stop the run at the first step whose distribution was not finite (see `flag_not_finite`)."""
    flat = [t for row in tokens for t in (row if isinstance(row, Sequence) else (row,))]
    if NOT_FINITE in flat:
        raise NotFiniteError(f"the composed EFT distribution is not finite at step {step} (NaN, or no token "
                             "with a finite log-prob): use smaller weights (beta, wN)")


@dataclass
class Generation:
    """One generated response."""

    text: str
    token_ids: list[int]
    finish_reason: str
    """`eos`, `stop` (a stop string), `length` (max_new_tokens) or `cancelled` (by `on_step`)."""
    stop_string: str | None = None
    """The stop string that ended the response (finish reason `stop`)."""

    @property
    def recorded_finish_reason(self) -> str:
        """Why the response ended as run folders record it: OpenAI's word (`FINISH_REASONS`), except that a
        stop string is named, since a task's stop strings mean different things (a new turn, a new line)."""
        return self.stop_string if self.stop_string is not None else FINISH_REASONS[self.finish_reason]


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
        self.distinct_rows, self.row_source = distinct_prompts(prompts)

    def _logprobs(self, logits: torch.Tensor) -> torch.Tensor:
        # Padded vocabulary rows (past the tokenizer) are cut off: they can never be chosen.
        return torch.log_softmax(logits[:, -1, : self.vocab_size].float(), dim=-1)

    @torch.inference_mode()
    def prefill(self) -> torch.Tensor:
        """Run the prompts; returns next-token log-probs `[rows, vocab]`.

        Rows with the same prompt (an alpha sweep's grid points, lm-eval's repeats) would compute
        the same keys, values and log-probs: each distinct prompt runs once (padded as in the whole
        batch) and its cache rows and log-probs are copied to its duplicates. For a sweep block that
        is the very prefill each grid point's own run computes.
        """
        if len(self.distinct_rows) == len(self.row_source):
            return self._run_prompts(None)
        distinct = torch.tensor(self.distinct_rows, dtype=torch.long, device=self.device)
        source = torch.tensor(self.row_source, dtype=torch.long, device=self.device)
        logprobs = self._run_prompts(distinct)
        self.cache.batch_select_indices(source)  # indexing with repeats expands the cache
        return logprobs.index_select(0, source.to(logprobs.device))

    def _run_prompts(self, rows: torch.Tensor | None) -> torch.Tensor:
        """The prompt forward pass over `rows` (None: all), filling the cache with those rows."""
        def pick(tensor: torch.Tensor) -> torch.Tensor:
            return tensor if rows is None else tensor.index_select(0, rows)

        out = self.model(
            input_ids=pick(self.input_ids),
            attention_mask=pick(self.attention_mask),
            position_ids=pick(self.positions),
            **cache_kwargs(self.model, self.cache),
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
            **cache_kwargs(self.model, self.cache),
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

    @torch.inference_mode()
    def join(self, other: ComponentStream, slots: Sequence[int] = ()) -> None:
        """Add the rows of `other` (same model, prefilled, never advanced) to this running batch: the
        first `len(slots)` take over the rows `slots` (rows that left), the others are appended.

        Caches and masks are left-padded to the wider of the two (`join_cache_rows`); each row keeps
        its own positions, so a row computes what it would in a batch of its own.
        """
        width = join_cache_rows(self.cache, other.cache, slots)
        placed = len(slots)

        def padded(mask: torch.Tensor) -> torch.Tensor:
            mask = mask.to(self.device)
            if mask.shape[1] == width:
                return mask
            return torch.cat([mask.new_zeros((mask.shape[0], width - mask.shape[1])), mask], dim=-1)

        mask, positions = padded(self.attention_mask), self.next_position
        other_mask, other_positions = padded(other.attention_mask), other.next_position.to(self.device)
        if placed:
            index = torch.tensor(list(slots), dtype=torch.long, device=self.device)
            mask, positions = mask.clone(), positions.clone()
            mask[index] = other_mask[:placed]
            positions[index] = other_positions[:placed]
        self.attention_mask = torch.cat([mask, other_mask[placed:]])
        self.next_position = torch.cat([positions, other_positions[placed:]])

    def trim_padding(self) -> None:
        """Drop leading slots that every row masks out (left by longer rows that left the batch):
        later steps then attend over the remaining rows' width, not the widest row's ever seen."""
        used = self.attention_mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        if first > 0:
            drop_leading_slots(self.cache, first)
            self.attention_mask = self.attention_mask[:, first:]


def distinct_prompts(prompts: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """The first row of each distinct prompt, and for every row the index of its prompt in that list."""
    position_of: dict[tuple[int, ...], int] = {}
    distinct: list[int] = []
    source: list[int] = []
    for row, prompt in enumerate(prompts):
        key = tuple(prompt)
        if key not in position_of:
            position_of[key] = len(distinct)
            distinct.append(row)
        source.append(position_of[key])
    return distinct, source


class StepComposer(Protocol):
    """Maps the streams' next-token log-probs to the EFT log-probs.

    `rows` are the batch rows the log-probs belong to (indices into the batch as it started; rows
    finish and leave), for composers that weight each row differently (`EFTModel.generate_ids`
    with `row_weights`); None means every row of the batch, in order.
    """

    def __call__(self, logprobs: Sequence[torch.Tensor], rows: Sequence[int] | None = None, /) -> torch.Tensor: ...


@dataclass
class DecodeStep:
    """The tokens one decoding step chose, as an `on_step` callback sees them (the server streams them)."""

    rows: list[int]
    """The batch row (index into `keys`) of each chosen token."""
    tokens: list[int]
    logprobs: torch.Tensor
    """`[len(rows), vocab]`: the EFT log-probs each token was chosen from (before temperature/top-p)."""
    finished: dict[int, Generation]
    """Rows that ended at this step; a row ended by EOS does not keep its EOS token."""


StepCallback = Callable[[DecodeStep], Collection[int]]
"""Called after every step with what it chose; returns the rows to stop now (a client went away).
A stopped row ends with finish_reason `cancelled` and what it generated so far."""


def decode(
    streams: Sequence[ComponentStream],
    compose: StepComposer,
    config: SamplingConfig,
    keys: Sequence[str],
    eos_ids: set[int],
    detokenize: Callable[[list[int]], str],
    on_step: StepCallback | None = None,
) -> list[Generation]:
    """Generate for one batch. `compose` maps the streams' log-probs to the EFT log-probs.

    `keys` are the rows' `_sampling.seeded_key`s (seed and prompt): reproducible randomness per row,
    whatever its batch mates and their seeds.
    """
    outputs = RowOutputs(len(keys), eos_ids, config, detokenize)
    active = list(range(len(keys)))  # original row index of each live row, in cache order
    logprobs = [stream.prefill() for stream in streams]
    for step in range(config.max_new_tokens):
        composed = compose(logprobs, active)
        tokens = flag_not_finite(choose_next_tokens(composed, config, [keys[r] for r in active], step), composed)
        chosen = tokens.tolist()
        check_finite_choices(chosen, step)
        still_running = [position for position, (row, token) in enumerate(zip(active, chosen))
                         if outputs.add(row, token)]
        if on_step is not None:
            still_running = observe_step(on_step, active, chosen, composed, still_running, outputs.results,
                                         outputs.generated, detokenize)
        if not still_running:
            break
        if len(still_running) < len(active):
            keep = torch.tensor(still_running, dtype=torch.long)
            for stream in streams:
                stream.keep_rows(keep)
            tokens = tokens.index_select(0, keep.to(tokens.device))
            active = [active[p] for p in still_running]
        logprobs = [stream.advance(tokens) for stream in streams]
    return outputs.finished()


class RowOutputs:
    """The tokens generated so far per row, and each finished row's `Generation`.

    The one place a chosen token is appended or ends its row (EOS, a stop string, the length
    limit), for plain and speculative decoding and the server alike: all must end rows identically.
    `config` is one for all rows, or one per row (the server batches requests whose stop strings
    and length limits differ).
    """

    def __init__(
        self, rows: int, eos_ids: set[int], config: SamplingConfig | Sequence[SamplingConfig],
        detokenize: Callable[[list[int]], str],
    ) -> None:
        self.generated: list[list[int]] = [[] for _ in range(rows)]
        self.results: list[Generation | None] = [None] * rows
        self.configs = [config] * rows if isinstance(config, SamplingConfig) else list(config)
        self.eos_ids, self.detokenize = eos_ids, detokenize

    def add(self, row: int, token: int) -> bool:
        """Append a chosen token to its row; False if it ended the row (an EOS token is not kept)."""
        so_far = self.generated[row]
        finish = _finish_reason(so_far, token, self.eos_ids, self.configs[row], len(so_far), self.detokenize)
        if finish is None:
            so_far.append(token)
            return True
        if finish[0] != "eos":
            so_far.append(token)
        self.results[row] = Generation(text=finish[1], token_ids=so_far, finish_reason=finish[0],
                                       stop_string=finish[2])
        return False

    def finished(self) -> list[Generation]:
        """The finished rows' generations, in row order."""
        return [result for result in self.results if result is not None]


def observe_step(
    on_step: StepCallback,
    rows: list[int],
    tokens: list[int],
    logprobs: torch.Tensor,
    still_running: list[int],
    results: list[Generation | None],
    generated: list[list[int]],
    detokenize: Callable[[list[int]], str],
) -> list[int]:
    """Report one step to `on_step`; returns the positions in `rows` still running after cancellations."""
    running = set(still_running)
    finished = {row: result for p, row in enumerate(rows) if p not in running and (result := results[row])}
    cancel = set(on_step(DecodeStep(rows, tokens, logprobs, finished)))
    if not cancel:
        return still_running
    for p in still_running:
        if rows[p] in cancel:
            results[rows[p]] = Generation(detokenize(generated[rows[p]]), generated[rows[p]], "cancelled")
    return [p for p in still_running if rows[p] not in cancel]


def _finish_reason(
    so_far: list[int],
    token: int,
    eos_ids: set[int],
    config: SamplingConfig,
    step: int,
    detokenize: Callable[[list[int]], str],
) -> tuple[str, str, str | None] | None:
    """(reason, final text, the stop string that ended it) if this token ends the row, else None."""
    if token in eos_ids:
        return "eos", detokenize(so_far), None
    if config.stop:
        text = detokenize([*so_far, token])
        found = [(i, s) for s in config.stop if (i := text.find(s)) >= 0]
        if found:
            cut, stop = min(found, key=lambda f: f[0])  # the earliest in the text; a tie: the first given
            return "stop", text[:cut], stop
    if step + 1 >= config.max_new_tokens:
        return "length", detokenize([*so_far, token]), None
    return None
