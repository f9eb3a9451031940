"""`EFTModel`: an EFT spec bound to loaded components, with `generate` and `score`.

    model = EFTModel.from_spec("base=LARGE_BASE,ft=SMALL_CHAT,ref=SMALL_BASE")
    [generation] = model.generate(["Why is the sky blue?"], max_new_tokens=64, seed=0)

Components that compute identical log-probs (same weights, same prompt format) share one forward
pass; weights named twice share one copy in memory.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from eft_eval.errors import EFTEvalError
from eft_eval.models._components import (
    Component,
    ModelCache,
    Prompt,
    check_context,
    check_local_path,
    check_shared_vocabulary,
    eos_token_ids,
)
from eft_eval.models._compose import compose_logprobs
from eft_eval.models._decoding import (
    ComponentStream,
    Generation,
    NotFiniteError,
    StepComposer,
    decode,
)
from eft_eval.models._devices import check_device
from eft_eval.models._sampling import (
    SamplingConfig,
    checked_setting,
    checked_stop_strings,
    prompt_key,
    seeded_key,
)
from eft_eval.models._scoring import continuation_logprobs
from eft_eval.models._spec import EFTSpec, delta_roles, parse_spec
from eft_eval.models._speculative import (
    SpeculativeStats,
    check_speculative,
    speculative_decode,
)
from eft_eval.parsing import NumberRange


@dataclass
class ContinuationScore:
    """EFT log-probs of a given continuation, token by token."""

    token_logprobs: list[float]
    is_greedy: bool
    """Whether every continuation token is the argmax of the EFT distribution."""

    @property
    def total(self) -> float:
        return float(sum(self.token_logprobs))


class EFTModel:
    """An EFT model: base log-probs plus `beta` times the weighted deltas, renormalized per step."""

    def __init__(self, spec: EFTSpec, components: Sequence[Component]) -> None:
        self.spec = spec
        self.components = list(components)  # one per role, in spec order (base, ft, ref, ...)
        # One per distinct (weights, prompt format): what gets a forward pass. Roles that compute
        # identical log-probs (a reference shared by two deltas) share one.
        self.forward_components: list[Component] = []
        index_of_key: dict[tuple[Any, ...], int] = {}
        self._role_index: dict[str, int] = {}
        for component in self.components:
            key = component.render_key
            if key not in index_of_key:
                index_of_key[key] = len(self.forward_components)
                self.forward_components.append(component)
            self._role_index[component.role] = index_of_key[key]
        self.vocab_size = check_shared_vocabulary(self.components)
        # The component whose tokenizer decodes a response and whose EOS ends it: the (first)
        # fine-tuned model, or the base model of a plain spec.
        self.response_component = self.components[1] if spec.deltas else self.components[0]
        self.tokenizer = self.response_component.tokenizer
        self.eos_token_ids = eos_token_ids(self.response_component)
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else next(iter(self.eos_token_ids), 0))

    @classmethod
    def from_spec(
        cls,
        spec: EFTSpec | str | dict[str, Any] | Path,
        *,
        dtype: str | None = None,
        device: str | None = None,
        model_cache: ModelCache | None = None,
    ) -> EFTModel:
        """Load every component of a spec; `dtype` / `device` override all components."""
        spec = parse_spec(spec).with_overrides(dtype=dtype, device=device)
        model_cache = ModelCache() if model_cache is None else model_cache
        for role, component in spec.components():  # before loading anything
            check_local_path(role, component)
            check_device(role, component.device)
        components = [Component(role, c, model_cache.get(c)) for role, c in spec.components()]
        return cls(spec, components)

    # -- composition ---------------------------------------------------------------------------

    def compose(self, component_logprobs: Sequence[torch.Tensor], rows: Sequence[int] | None = None,
                row_weights: torch.Tensor | None = None) -> torch.Tensor:
        """EFT log-probs from the log-probs of `self.forward_components` (same order, same shape).

        `row_weights` `[batch, n_deltas]` replaces the spec's delta weights row by row (`rows`
        picks the live rows of the batch): one pass serves several weightings of one spec.
        """
        device = component_logprobs[self._role_index["base"]].device

        def of(role: str) -> torch.Tensor:
            return component_logprobs[self._role_index[role]].to(device)

        deltas, weights = [], []
        for index, delta in enumerate(self.spec.deltas, start=1):
            ft_role, ref_role = delta_roles(index)
            deltas.append((of(ft_role), of(ref_role)))
            weights.append(delta.weight)
        if row_weights is not None:
            picked = row_weights if rows is None else row_weights[torch.as_tensor(list(rows), dtype=torch.long)]
            return compose_logprobs(of("base"), deltas, picked, self.spec.beta, self.spec.top_p_weights)
        return compose_logprobs(of("base"), deltas, weights, self.spec.beta, self.spec.top_p_weights)

    def component_for(self, role: str) -> Component:
        return self.forward_components[self._role_index[role]]

    # -- prompts -------------------------------------------------------------------------------

    def encode(self, prompts: Sequence[Prompt], raw: bool = False) -> list[list[list[int]]]:
        """Token ids of every prompt for every forward component: `[component][prompt] -> ids`.

        `raw=True` feeds strings verbatim (lm-eval contexts) instead of rendering them as queries.
        """
        check_is_list(prompts, "prompts")
        if raw:
            return [[c.encode_raw(str(p)) for p in prompts] for c in self.forward_components]
        return [[c.encode(p) for p in prompts] for c in self.forward_components]

    def detokenize(self, token_ids: list[int]) -> str:
        return str(self.tokenizer.decode(token_ids, skip_special_tokens=True))

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 256,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int = 0,
        stop: Sequence[str] = (),
        batch_size: int = 8,
        raw: bool = False,
        progress: bool = False,
        speculative_block: int = 0,
        speculative_mode: str = "exact",
    ) -> list[Generation]:
        """Generate one response per prompt, in input order.

        A prompt's response depends only on the prompt, the seed and the settings, never on the
        other prompts in its batch. `speculative_block=K > 0` decodes speculatively (the first
        fine-tuned model drafts K tokens a round, see `_speculative.py`): `speculative_mode="exact"`
        gives the same tokens as plain decoding, `"rejection"` the same distribution, faster.
        """
        config = SamplingConfig(
            max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
            top_p=top_p, top_k=top_k, seed=seed, stop=checked_stop_strings(stop),
        )
        return self.generate_ids(self.encode(prompts, raw=raw), config, [prompt_key(p) for p in prompts],
                                 batch_size=batch_size, progress=progress,
                                 speculative_block=speculative_block, speculative_mode=speculative_mode)

    def generate_ids(
        self,
        prompt_ids: list[list[list[int]]],
        config: SamplingConfig,
        keys: Sequence[str],
        batch_size: int = 8,
        progress: bool = False,
        speculative_block: int = 0,
        speculative_mode: str = "exact",
        speculative_stats: SpeculativeStats | None = None,
        row_weights: Sequence[Sequence[float]] | None = None,
    ) -> list[Generation]:
        """`generate` on already-encoded prompts (`[component][prompt] -> ids`, as `encode` gives).

        `speculative_stats`, if given, accumulates the speculative decoder's acceptance counts.
        `row_weights`, one list of delta weights per prompt, overrides the spec's weights prompt by
        prompt: the same prompt given twice with weights `[a, 1-a]` and `[b, 1-b]` yields exactly
        the samples of two models with `alpha=a` and `alpha=b`, in one batched pass.
        """
        mode = check_speculative(speculative_block, speculative_mode)
        batch_size = int(checked_setting(batch_size, "batch_size", NumberRange(integer=True, minimum=1)))
        check_context(self.forward_components, prompt_ids, config.max_new_tokens, "max_new_tokens")
        decoder = decode
        weights = None
        if row_weights is not None:
            weights = torch.tensor([list(w) for w in row_weights], dtype=torch.float64)
            if weights.shape != (len(keys), len(self.spec.deltas)):
                raise ValueError(f"row_weights: expected {len(keys)} rows of {len(self.spec.deltas)} weights, "
                                 f"got shape {tuple(weights.shape)}")
            if not bool(torch.isfinite(weights).all()):
                row = int((~torch.isfinite(weights)).any(-1).nonzero()[0])
                raise EFTEvalError(f"row_weights: row {row} holds a weight that is not finite: "
                                   f"{list(row_weights[row])}")
            if speculative_block > 0:
                raise ValueError("row_weights are not supported with speculative decoding")
        if speculative_block > 0:
            decoder = speculative_decoder(self, speculative_block, mode, speculative_stats)
        count = len(keys)
        results: list[Generation | None] = [None] * count
        # Longest first: similar lengths share a batch (less padding) and memory errors come early.
        order = sorted(range(count), key=lambda i: -len(prompt_ids[0][i]))
        bar = _progress(count, "generating", progress)
        for batch in chunks(order, batch_size):
            streams = [
                ComponentStream(c.model, [ids[i] for i in batch], self.pad_token_id, self.vocab_size)
                for c, ids in zip(self.forward_components, prompt_ids)
            ]
            composer = self.compose if weights is None else _row_composer(self, weights[batch])
            row_keys = [seeded_key(config.seed, keys[i]) for i in batch]
            try:
                outputs = decoder(streams, composer, config, row_keys, self.eos_token_ids, self.detokenize)
            except NotFiniteError as error:
                raise NotFiniteError(f"model {self.spec.to_string()!r}: {error}") from None
            for i, output in zip(batch, outputs):
                results[i] = output
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        return [r for r in results if r is not None]

    # -- scoring -------------------------------------------------------------------------------

    def score_ids(
        self, prompt_ids: list[list[list[int]]], continuations: Sequence[Sequence[int]]
    ) -> list[torch.Tensor]:
        """EFT log-prob distributions `[len(continuation), vocab]` at each continuation position."""
        check_context(self.forward_components, prompt_ids, [len(c) for c in continuations], "the continuation",
                      "shorten the prompt or the continuation")
        per_component = [
            continuation_logprobs(c.model, ids, continuations, self.pad_token_id, self.vocab_size)
            for c, ids in zip(self.forward_components, prompt_ids)
        ]
        distributions = [self.compose([rows[i] for rows in per_component]) for i in range(len(continuations))]
        self._check_finite(distributions)
        return distributions

    def _check_token_ids(self, continuations: Sequence[Sequence[int]]) -> None:
        """Token ids given by the caller must be ids of this vocabulary (an embedding lookup past it
        is an IndexError; a bool is not an id)."""
        for index, ids in enumerate(continuations):
            bad = next((t for t in ids if isinstance(t, bool) or not isinstance(t, numbers.Integral)
                        or not 0 <= t < self.vocab_size), None)
            if bad is not None:
                raise EFTEvalError(f"continuation {index}: token id {bad!r} is not an id of this model's vocabulary "
                                   f"(whole numbers 0 to {self.vocab_size - 1})")

    def _check_finite(self, distributions: Sequence[torch.Tensor]) -> None:
        """Refuse scores from a composition that is not a distribution (see `flag_not_finite`):
        one host read for all continuations together."""
        if not distributions:
            return
        finite = torch.stack([torch.isfinite(d.amax(dim=-1)).all() for d in distributions]).cpu()
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0])
            raise NotFiniteError(f"model {self.spec.to_string()!r}: the composed EFT distribution is not finite "
                                 f"for continuation {first} (NaN, or no token with a finite log-prob): use smaller "
                                 "weights (beta, wN)")

    def score(
        self, prompts: Sequence[Prompt], continuations: Sequence[str | Sequence[int]], raw: bool = False
    ) -> list[ContinuationScore]:
        """Log-probs of each continuation (text or token ids) after its prompt, under the EFT model."""
        check_is_list(continuations, "continuations")
        if len(prompts) != len(continuations):
            raise EFTEvalError(f"score: {len(prompts)} prompt(s) but {len(continuations)} continuation(s): "
                               "give one continuation per prompt")
        continuation_ids = [
            self.tokenizer(c, add_special_tokens=False)["input_ids"] if isinstance(c, str) else list(c)
            for c in continuations
        ]
        self._check_token_ids(continuation_ids)
        distributions = self.score_ids(self.encode(prompts, raw=raw), continuation_ids)
        scores = []
        for ids, dist in zip(continuation_ids, distributions):
            target = torch.tensor(ids, dtype=torch.long, device=dist.device)
            picked = dist.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            scores.append(ContinuationScore(picked.tolist(), bool((dist.argmax(-1) == target).all())))
        return scores


def check_is_list(items: object, name: str) -> None:
    """Refuse one text where a list of them is expected: a str is a sequence of characters, and
    `generate("Why?")` would otherwise answer each character as a prompt of its own."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise EFTEvalError(f"{name}: expected a list, got {type(items).__name__} {str(items)[:40]!r}: "
                           f"pass a list, e.g. [{str(items)[:20]!r}]")


def _row_composer(model: EFTModel, batch_weights: torch.Tensor) -> StepComposer:
    """`model.compose` with per-row delta weights for one batch (rows as the batch started)."""
    def compose(logprobs: Sequence[torch.Tensor], rows: Sequence[int] | None = None, /) -> torch.Tensor:
        return model.compose(logprobs, rows, row_weights=batch_weights)

    return compose


def speculative_decoder(
    model: EFTModel, block: int, mode: str = "exact", stats: SpeculativeStats | None = None
) -> Callable[..., list[Generation]]:
    """A `decode`-compatible function for `model` whose first fine-tuned component drafts."""
    if not model.spec.deltas:
        raise EFTEvalError("speculative decoding needs an EFT spec with a fine-tuned (ft) component to draft")
    return functools.partial(speculative_decode, draft_index=draft_component_index(model), block=block,
                             mode=check_speculative(block, mode), stats=stats)


def draft_component_index(model: EFTModel) -> int:
    """Position in `model.forward_components` of the first delta's fine-tuned component (the draft model)."""
    draft = model.component_for("ft")
    return next(i for i, c in enumerate(model.forward_components) if c is draft)


def chunks(items: list[int], size: int) -> Iterator[list[int]]:
    """Consecutive slices of at most `size` items: the batches of a sorted list of prompt indices."""
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]


def _progress(total: int, description: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="prompt")
