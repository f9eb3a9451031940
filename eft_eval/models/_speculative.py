"""Speculative EFT decoding (paper section 4.3): the small fine-tuned model drafts, everyone verifies.

One round, per batch of rows that each hold one *pending* token (chosen, not yet fed to any cache):

1. the draft (the first delta's fine-tuned component) feeds the pending token and drafts `k - 1`
   more tokens one at a time with its own cache, giving its conditionals at `k` positions;
2. every other component feeds the same `k` tokens (pending + first `k - 1` drafts) in ONE forward
   pass and returns its conditionals at the same `k` positions;
3. the EFT conditionals at those positions are composed in hindsight and, position by position,
   the true token is chosen; drafts are kept while they agree, the first disagreement is replaced
   by the true token, which becomes the next pending token;
4. every cache is rewound to the kept tokens (see `rewind_stream`).

Two ways to choose "the true token" (`mode`):

- `exact`: with the same per-(seed, prompt, step) uniform as plain decoding (`uniform_at(row key,
  t)`, the row key holding seed and prompt) or the argmax, so the output is token-for-token the
  plain decoder's; the draft samples with that same uniform, so it agrees whenever its inverse CDF
  lands on the same token.
- `rejection`: speculative sampling (Leviathan et al. 2023; Chen et al. 2023): the draft samples
  from its own filtered conditional q, the token is accepted with probability min(1, p/q) and on
  rejection resampled from the normalized residual max(0, p - q). Samples follow the filtered EFT
  distribution p exactly, but are not the plain decoder's samples; per token it accepts with
  probability 1 - TV(q, p), the best any coupling can do, so it accepts at least as often.

"Identical" is up to floating point: the verifying components score a block in one forward pass
where plain decoding feeds one token at a time, so their log-probs can differ in the last bits; a
choice flips only if a uniform lands within ~1e-7 of a CDF boundary (or two logits tie).

Rows of a batch accept different numbers of tokens. Rather than re-feeding tokens, rejected
positions stay in the KV caches but are masked out of attention (exactly as left padding is) and
each row's next position id only advances over what it kept; trailing positions no row kept are
cropped. Masked keys get zero attention weight, so a rewound cache computes what a fresh one would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from eft_eval.errors import EFTEvalError
from eft_eval.models._decoding import (
    ComponentStream,
    Generation,
    RowOutputs,
    StepCallback,
    StepComposer,
    check_finite_choices,
    decode,
    flag_not_finite,
    observe_step,
)
from eft_eval.models._kv_cache import cache_kwargs
from eft_eval.models._sampling import (
    SamplingConfig,
    choose_next_tokens,
    filter_for_sampling,
    sample_with_uniforms,
    uniform_at,
)

SpeculativeMode = Literal["exact", "rejection"]
SPECULATIVE_MODES: tuple[str, ...] = ("exact", "rejection")


def check_speculative(block: int, mode: str) -> SpeculativeMode:
    """The one check of speculative settings, wherever they come from (library, CLI, lm-eval
    model_args): `block` tokens drafted a round, 0 for plain decoding; `mode` exact or rejection."""
    if isinstance(block, bool) or not isinstance(block, int) or block < 0:
        raise EFTEvalError(f"speculative_block={block!r} must be a whole number >= 0 (0: plain decoding)")
    if mode == "exact":
        return "exact"
    if mode == "rejection":
        return "rejection"
    raise EFTEvalError(f"speculative_mode={mode!r} must be one of {', '.join(SPECULATIVE_MODES)}")


@dataclass
class SpeculativeStats:
    """Counts accumulated over every round of every row (pass one in to read them afterwards)."""

    rounds: int = 0
    """Verification passes (one forward of every non-draft component per pass)."""
    blocks: int = 0
    """(row, round) pairs: a block is one row's drafted tokens in one round."""
    emitted: int = 0
    """Tokens produced by blocks: accepted drafts plus the correcting token."""
    verified: int = 0
    """Drafted tokens compared with the EFT choice (up to and including the first rejection)."""
    accepted: int = 0
    """Drafted tokens kept."""
    uneven_rounds: int = 0
    """Rounds in which rows of the batch kept different numbers of tokens."""
    emitted_per_block: list[int] = field(default_factory=list)

    @property
    def acceptance_rate(self) -> float:
        """Share of verified drafts kept: estimates P(draft token == EFT token) per token."""
        return self.accepted / self.verified if self.verified else 0.0

    @property
    def mean_tokens_per_block(self) -> float:
        """Tokens produced per verification of one row's block (accepted drafts + the EFT token)."""
        return self.emitted / self.blocks if self.blocks else 0.0

    @property
    def mean_accepted_per_block(self) -> float:
        """Drafted tokens kept per block."""
        return self.accepted / self.blocks if self.blocks else 0.0


# -- cache surgery --------------------------------------------------------------------------------


@torch.inference_mode()
def extend_stream(stream: ComponentStream, tokens: torch.Tensor) -> torch.Tensor:
    """Feed `[rows, k]` tokens in one forward pass; returns log-probs `[rows, k, vocab]`.

    Row `i` of the result at column `j` is the distribution of the token after `tokens[:, j]`.
    """
    tokens = tokens.to(stream.device)
    width = tokens.shape[1]
    stream.attention_mask = torch.cat([stream.attention_mask, torch.ones_like(tokens)], dim=-1)
    offsets = torch.arange(width, device=stream.device)
    out = stream.model(
        input_ids=tokens,
        attention_mask=stream.attention_mask,
        position_ids=stream.next_position.view(-1, 1) + offsets,
        **cache_kwargs(stream.model, stream.cache),
        use_cache=True,
        logits_to_keep=width,
    )
    stream.next_position = stream.next_position + width
    return torch.log_softmax(out.logits[:, -width:, : stream.vocab_size].float(), dim=-1)


def rewind_stream(stream: ComponentStream, fed: int, kept: torch.Tensor) -> None:
    """Undo the last `fed` tokens of every row except its first `kept[row]` of them.

    Dropped positions are masked out and the row's next position id moves back; columns that no
    row kept are cut from the cache entirely so the cache does not grow with rejected drafts.
    """
    kept = kept.to(stream.device)
    width = stream.attention_mask.shape[1]
    columns = torch.arange(width - fed, width, device=stream.device)
    dropped = columns.unsqueeze(0) >= (width - fed + kept).unsqueeze(1)
    tail = stream.attention_mask[:, width - fed:].masked_fill(dropped, 0)
    stream.attention_mask = torch.cat([stream.attention_mask[:, : width - fed], tail], dim=1)
    stream.next_position = stream.next_position - fed + kept
    unused = fed - int(kept.max())
    if unused > 0:
        stream.cache.crop(-unused)
        stream.attention_mask = stream.attention_mask[:, :-unused]


# -- choosing tokens ------------------------------------------------------------------------------


def _verify_exact(
    eft: torch.Tensor, draft_logprobs: torch.Tensor, drafts: torch.Tensor,
    config: SamplingConfig, keys: Sequence[str], steps: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(EFT token, draft accepted) at every position: the plain decoder's choice, compared."""
    del draft_logprobs  # the exact choice never looks at the draft's distribution
    chosen = choose_next_tokens(eft, config, keys, steps)
    return chosen, chosen == drafts


def _verify_rejection(
    eft: torch.Tensor, draft_logprobs: torch.Tensor, drafts: torch.Tensor,
    config: SamplingConfig, keys: Sequence[str], steps: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(token, draft accepted) by speculative sampling: accept w.p. min(1, p/q), else residual."""
    if config.greedy:  # point masses: accepting iff the argmaxes agree is exactly rejection sampling
        return _verify_exact(eft, draft_logprobs, drafts, config, keys, steps)
    p = filter_for_sampling(eft, config.temperature, config.top_p, config.top_k).double().exp()
    q = filter_for_sampling(draft_logprobs, config.temperature, config.top_p, config.top_k).double().exp()
    p_draft = p.gather(-1, drafts.unsqueeze(-1)).squeeze(-1)
    q_draft = q.gather(-1, drafts.unsqueeze(-1)).squeeze(-1)
    # Distinct keys give independent uniforms and leave the plain decoder's stream untouched.
    accept_u = torch.tensor([uniform_at(k + "#accept", s) for k, s in zip(keys, steps)],
                            dtype=torch.float64, device=p.device)
    accepted = accept_u * q_draft < p_draft  # u < p/q without dividing by a tiny q
    residual = (p - q).clamp_(min=0)
    # Where p == q up to rounding the residual is empty; rejection then has probability ~0 and any
    # draw from p is correct.
    residual = torch.where(residual.sum(-1, keepdim=True) > 0, residual, p)
    corrections = sample_with_uniforms(
        residual.log(), [uniform_at(k + "#residual", s) for k, s in zip(keys, steps)]
    )
    return torch.where(accepted, drafts, corrections), accepted


_VERIFIERS = {"exact": _verify_exact, "rejection": _verify_rejection}


# -- the decoder ----------------------------------------------------------------------------------


def speculative_decode(
    streams: Sequence[ComponentStream],
    compose: StepComposer,
    config: SamplingConfig,
    keys: Sequence[str],
    eos_ids: set[int],
    detokenize: Callable[[list[int]], str],
    *,
    draft_index: int,
    block: int,
    mode: SpeculativeMode = "exact",
    stats: SpeculativeStats | None = None,
    on_step: StepCallback | None = None,
) -> list[Generation]:
    """Speculative version of `_decoding.decode`; `streams[draft_index]` drafts `block` tokens a round.

    `on_step` sees each round's kept tokens one position at a time, as plain decoding's steps.

    With `mode="exact"` the result equals `decode(streams, compose, config, keys, ...)`; `block=0`
    is plain decoding.
    """
    verify = _VERIFIERS[check_speculative(block, mode)]
    if block == 0:
        return decode(streams, compose, config, keys, eos_ids, detokenize, on_step)
    stats = stats if stats is not None else SpeculativeStats()
    responses = RowOutputs(len(keys), eos_ids, config, detokenize)
    draft = streams[draft_index]
    others = [i for i in range(len(streams)) if i != draft_index]

    # The first token is chosen from the prefill, as in plain decoding; it becomes the pending token.
    prefill = compose([s.prefill() for s in streams])
    first = flag_not_finite(choose_next_tokens(prefill, config, keys, 0), prefill)
    check_finite_choices(first.tolist(), 0)
    active = [row for row, token in enumerate(first.tolist()) if responses.add(row, token)]
    if on_step is not None:
        active = observe_step(on_step, list(range(len(keys))), first.tolist(), prefill, active, responses.results,
                              responses.generated, detokenize)
    pending = first[torch.tensor(active, dtype=torch.long)] if active else first[:0]
    if len(active) < len(keys):
        _keep(streams, active)  # rows are still in their original order here

    while active:
        row_keys = [keys[r] for r in active]
        starts = [len(responses.generated[r]) for r in active]  # step index of each row's next token
        # No row feeds a position past its last possible token, as in plain decoding: a model
        # with absolute positions has none past its context (drafts there could never be kept).
        width = min(block, config.max_new_tokens - max(starts))

        # 1. Draft: feed the pending token, then each drafted token but the last.
        draft_steps, drafted, fed = [], [], pending
        for offset in range(width):
            draft_steps.append(draft.advance(fed))
            fed = choose_next_tokens(draft_steps[-1], config, row_keys, [s + offset for s in starts])
            drafted.append(fed)
        drafts = torch.stack(drafted, dim=1)  # [rows, width]
        draft_logprobs = torch.stack(draft_steps, dim=1)  # [rows, width, vocab]
        inputs = torch.cat([pending.to(drafts.device).view(-1, 1), drafts[:, :-1]], dim=1)

        # 2-3. Verify: every other component scores the block in one pass; compose in hindsight.
        logprobs: list[torch.Tensor] = [draft_logprobs] * len(streams)
        for index in others:
            logprobs[index] = extend_stream(streams[index], inputs)
        eft = compose([lp.flatten(0, 1) for lp in logprobs])
        flat_keys = [k for k in row_keys for _ in range(width)]
        flat_steps = [s + offset for s in starts for offset in range(width)]
        chosen, agrees = verify(eft, draft_logprobs.flatten(0, 1), drafts.flatten().to(eft.device),
                                config, flat_keys, flat_steps)
        chosen = flag_not_finite(chosen, eft)
        chosen_rows = chosen.view(-1, width).tolist()
        check_finite_choices(chosen_rows, min(starts))
        kept, survivors, next_pending = _take_blocks(
            responses, active, chosen_rows, agrees.view(-1, width).tolist(), stats
        )
        if on_step is not None:
            cancelled = _observe_round(on_step, active, chosen_rows, eft.reshape(len(active), width, -1),
                                       kept, survivors, responses, detokenize)
            next_pending = [t for p, t in zip(survivors, next_pending) if active[p] not in cancelled]
            survivors = [p for p in survivors if active[p] not in cancelled]

        # 4. Rewind: a row's cache keeps the pending token and the drafts before its new pending one.
        kept_tensor = torch.tensor(kept, dtype=torch.long)
        for stream in streams:
            rewind_stream(stream, width, kept_tensor)
        if len(survivors) < len(active):
            _keep(streams, survivors)
        active = [active[p] for p in survivors]
        pending = torch.tensor(next_pending, dtype=torch.long)
    return responses.finished()


def _take_blocks(
    responses: RowOutputs, active: list[int], tokens: list[list[int]], accepted: list[list[bool]],
    stats: SpeculativeStats,
) -> tuple[list[int], list[int], list[int]]:
    """Append each row's tokens up to its first rejected draft (whose EFT token replaces it).

    Returns per row the number of tokens kept, the positions of rows still running, and their new
    pending token (the last one kept).
    """
    kept, survivors, next_pending = [], [], []
    for position, row in enumerate(active):
        count, alive = 0, True
        while alive and count < len(tokens[position]):
            alive = responses.add(row, tokens[position][count])
            count += 1
            stats.verified += 1
            if not accepted[position][count - 1]:
                break
            stats.accepted += 1
        kept.append(count)
        if alive:
            survivors.append(position)
            next_pending.append(tokens[position][count - 1])
    stats.rounds += 1
    stats.blocks += len(active)
    stats.emitted += sum(kept)
    stats.emitted_per_block += kept
    stats.uneven_rounds += int(len(set(kept)) > 1)
    return kept, survivors, next_pending


def _observe_round(
    on_step: StepCallback, active: list[int], tokens: list[list[int]], eft: torch.Tensor, kept: list[int],
    survivors: list[int], responses: RowOutputs, detokenize: Callable[[list[int]], str],
) -> set[int]:
    """Report a round's kept tokens to `on_step`, one block position at a time; returns the rows
    it cancelled (their result is already set, as `observe_step` does)."""
    alive, cancelled = set(survivors), set()
    for column in range(max(kept, default=0)):
        positions = [p for p in range(len(active)) if kept[p] > column and active[p] not in cancelled]
        if not positions:
            break
        rows = [active[p] for p in positions]
        # A row ended at this column if it did not survive the round and this is its last kept token.
        running = [i for i, p in enumerate(positions) if p in alive or kept[p] > column + 1]
        still = observe_step(on_step, rows, [tokens[p][column] for p in positions], eft[positions, column],
                             running, responses.results, responses.generated, detokenize)
        cancelled |= {rows[i] for i in set(running) - set(still)}
    return cancelled


def _keep(streams: Sequence[ComponentStream], positions: list[int]) -> None:
    keep = torch.tensor(positions, dtype=torch.long)
    for stream in streams:
        stream.keep_rows(keep)
