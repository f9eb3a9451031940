"""Choosing the next token from a composed distribution, with reproducible randomness.

Randomness is one uniform number per (seed, prompt key, time step), derived by hashing, so a
prompt's sample never depends on its batch mates, its position in the batch or the batch size,
and a speculative decoder that re-scores drafted tokens can reproduce exactly the same choices.
A token is drawn by inverting the cumulative distribution at that uniform.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from eft_eval.errors import EFTEvalError
from eft_eval.models._compose import top_p_mask
from eft_eval.parsing import FLOAT32_TINY, SAMPLING_RANGES, NumberRange


class SettingError(EFTEvalError, ValueError):
    """A generation setting out of range. Also a ValueError: callers that turn a ValueError from
    `SamplingConfig` into their own answer (the server's 400, lm-eval's gen_kwargs error) keep working."""


def filter_for_sampling(
    logprobs: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0
) -> torch.Tensor:
    """Apply temperature, top-k and top-p to a (composed) distribution; returns normalized log-probs.

    Filtered-out tokens get -inf. `temperature` must be > 0 (greedy decoding takes the argmax and
    never calls this).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 for sampling, got {temperature}")
    # Shifted so the most likely token sits at 0: a tiny temperature then sends the others to
    # -inf, never every token (which would make the row NaN).
    shifted = logprobs.float() - logprobs.float().amax(dim=-1, keepdim=True)
    scaled = torch.log_softmax(shifted / temperature, dim=-1)
    if top_k and top_k < scaled.shape[-1]:
        kth_value = torch.topk(scaled, top_k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth_value, float("-inf"))
    if top_p < 1.0:
        scaled = scaled.masked_fill(~top_p_mask(scaled, top_p), float("-inf"))
    return torch.log_softmax(scaled, dim=-1)


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are chosen and when generation stops."""

    max_new_tokens: int = 256
    """>= 1."""
    do_sample: bool = False
    """False: greedy (argmax of the composed distribution)."""
    temperature: float = 1.0
    """0, or finite and at least float32's smallest normal (a smaller one rounds to 0 when log-probs
    are divided by it). 0 with `do_sample` is greedy decoding, the limit of ever smaller
    temperatures (as in vLLM and the OpenAI API; transformers refuses it instead)."""
    top_p: float = 1.0
    """In (0, 1]; 1 disables top-p."""
    top_k: int = 0
    """A whole number >= 0; 0 disables top-k."""
    seed: int = 0
    """Any whole number: it is hashed with the prompt, never handed to a random generator."""
    stop: tuple[str, ...] = field(default_factory=tuple)
    """Stop strings: generation ends at the first one, which is cut from the text. One string given
    alone is one stop string (as the OpenAI API's `stop`), not one per character."""

    def __post_init__(self) -> None:
        # Every entry point (library, CLI, server, lm-eval, sweeps) builds one of these: checked here,
        # a NaN temperature or a top-p of 1.5 cannot reach the sampler from anywhere.
        for key, allowed in {**SAMPLING_RANGES, "seed": NumberRange(integer=True)}.items():
            object.__setattr__(self, key, checked_setting(getattr(self, key), key, allowed))
        if 0 < self.temperature < FLOAT32_TINY:
            raise SettingError(f"generation setting: temperature={self.temperature!r} is too small for float32 "
                               f"(expected 0 for greedy or a finite number >= {FLOAT32_TINY:.2g})")
        object.__setattr__(self, "stop", checked_stop_strings(self.stop))
        if not isinstance(self.do_sample, bool):
            raise SettingError(f"generation setting do_sample={self.do_sample!r} is not a boolean (True or False)")

    @property
    def greedy(self) -> bool:
        return not self.do_sample or self.temperature == 0


def checked_setting(value: Any, key: str, allowed: NumberRange) -> Any:
    """A generation setting checked against its range, raising `SettingError` (one line naming key and value)."""
    try:
        return allowed.parse(value, key, "generation setting")
    except EFTEvalError as error:
        raise SettingError(str(error)) from None


def checked_stop_strings(stop: Any) -> tuple[str, ...]:
    """Stop strings as a tuple; an empty one would end every response before its first token."""
    strings = (stop,) if isinstance(stop, str) else tuple(stop)
    for text in strings:
        if not isinstance(text, str) or not text:
            raise SettingError(f"generation setting stop={text!r}: a stop string must be non-empty text "
                               "(an empty one ends every response at once)")
    return strings


def prompt_key(prompt: object) -> str:
    """A stable key for a prompt (text or conversation), used to seed its randomness."""
    return hashlib.sha256(repr(prompt).encode()).hexdigest()[:16]


def seeded_key(seed: int, key: str) -> str:
    """A row's randomness key: its seed and its prompt's key. The decoders take these, so rows with
    different seeds can share a batch (`uniform_at(seeded_key(s, k), t) == uniform_for(s, k, t)`)."""
    return f"{seed}|{key}"


def uniform_at(row_key: str, step: int) -> float:
    """A uniform number in [0, 1) that depends only on (row key, time step)."""
    digest = hashlib.blake2b(f"{row_key}|{step}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 11) / float(1 << 53)


def uniform_for(seed: int, key: str, step: int) -> float:
    """A uniform number in [0, 1) that depends only on (seed, prompt key, time step)."""
    return uniform_at(seeded_key(seed, key), step)


def sample_with_uniforms(logprobs: torch.Tensor, uniforms: Sequence[float]) -> torch.Tensor:
    """Inverse-CDF sampling: one token per row of `[rows, vocab]` log-probs given one uniform per row.

    Computed in float64 so that the choice is stable to the last bit of the distribution.
    """
    probs = logprobs.double().exp()
    cdf = torch.cumsum(probs, dim=-1)
    targets = torch.tensor(uniforms, dtype=torch.float64, device=cdf.device).unsqueeze(-1) * cdf[:, -1:]
    tokens = torch.searchsorted(cdf, targets, right=True).squeeze(-1)
    return tokens.clamp_(max=logprobs.shape[-1] - 1)


def choose_next_tokens(
    composed: torch.Tensor, config: SamplingConfig, keys: Sequence[str], step: int | Sequence[int]
) -> torch.Tensor:
    """Next token per row: argmax when greedy, else a reproducible sample after filtering.

    `keys` are the rows' `seeded_key`s (each row's own seed; `config.seed` is not read here).
    `step` is the time step of every row, or one step per row (a speculative decoder verifies rows
    that stand at different steps).
    """
    if config.greedy:
        return composed.argmax(dim=-1)
    steps = [step] * len(keys) if isinstance(step, int) else list(step)
    filtered = filter_for_sampling(composed, config.temperature, config.top_p, config.top_k)
    return sample_with_uniforms(filtered, [uniform_at(key, s) for key, s in zip(keys, steps)])


def sampling_group(config: SamplingConfig) -> tuple[float, float, int] | None:
    """What `choose_next_tokens` reads of a row's settings: None for greedy rows, else
    (temperature, top-p, top-k). Rows with equal groups are filtered together."""
    return None if config.greedy else (config.temperature, config.top_p, config.top_k)


def choose_tokens_per_row(
    composed: torch.Tensor, configs: Sequence[SamplingConfig], keys: Sequence[str], steps: Sequence[int]
) -> torch.Tensor:
    """Next token per row of `composed` `[rows, vocab]`, each row with its own settings, key and step.

    Row r gets exactly what `choose_next_tokens(composed[r:r+1], configs[r], [keys[r]], steps[r])`
    gives (every operation of the choice works along the vocabulary, row by row):
      1. rows are grouped by `sampling_group` (greedy; or temperature, top-p, top-k);
      2. greedy rows take the argmax;
      3. each sampled group is filtered once (`filter_for_sampling`) and each of its rows draws at
         `uniform_at(key, step)` (`sample_with_uniforms`).
    """
    groups: dict[tuple[float, float, int] | None, list[int]] = {}
    for row, config in enumerate(configs):
        groups.setdefault(sampling_group(config), []).append(row)
    if len(groups) == 1:
        return choose_next_tokens(composed, configs[0], keys, list(steps))
    tokens = torch.empty(composed.shape[0], dtype=torch.long, device=composed.device)
    for rows in groups.values():
        index = torch.tensor(rows, dtype=torch.long, device=composed.device)
        picked = choose_next_tokens(composed.index_select(0, index), configs[rows[0]], [keys[r] for r in rows],
                                    [steps[r] for r in rows])
        tokens.index_copy_(0, index, picked.to(tokens.device))
    return tokens
