"""The `eft` lm-eval backend: an EFT model as an lm-eval `LM`.

    lm_eval.simple_evaluate(model="eft", model_args="base=LARGE,ft=SMALL_CHAT,ref=SMALL", tasks=[...])
    eft-eval lm-eval --model eft --model_args base=...,ft=...,ref=... --tasks ...

Contexts are tokenized the way lm-eval's `hf` backend does (its `TemplateLM` code, `tok_encode`
with the same BOS rule), so with `base == ref` the numbers equal `hf`'s for the fine-tuned model.
Plain contexts are fed verbatim to every component; under `--apply_chat_template` each component
renders the conversation in its own prompt format (see `eft_eval/lm_eval/_chat.py`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import lm_eval.models  # noqa: F401  (lm-eval's own backends are registered before `eft`)
import torch
from lm_eval.api.model import CacheHook, TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import postprocess_generated_text, resolve_max_length
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

from eft_eval.errors import EFTEvalError
from eft_eval.lm_eval._args import (
    BACKEND_KEYS,
    RAW_MODEL_ARGS_KEY,
    SpecInput,
    backend_options,
    check_max_length,
    mentions_device,
    merge_options,
    parse_model_spec,
    split_model_args,
    with_cli_additions,
)
from eft_eval.lm_eval._chat import Conversation, conversation_marker
from eft_eval.lm_eval._gen_kwargs import (
    HONOURED,
    gen_kwargs_source,
    ignored_keys,
    sampling_config,
    sampling_keys,
)
from eft_eval.lm_eval._generated import GeneratedText
from eft_eval.lm_eval._registration import MODEL_NAME
from eft_eval.lm_eval._runtime import (
    device_override,
    distributed_accelerator,
    model_identity,
    scope_cache_to_model,
)
from eft_eval.models import (
    DEFAULT_PLAIN_TEMPLATE,
    EFTModel,
    SamplingConfig,
    chunks,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")  # what a caller of `generate_rows` tags each row with


@dataclass
class _Scored:
    """One continuation to score: per-unique-component context ids and shared continuation ids."""

    key: tuple[str, str] | None  # lm-eval's request args for the partial cache; None for windows
    contexts: list[list[int]]
    continuation: list[int]


@register_model(MODEL_NAME)
class EFTLM(TemplateLM):
    """An EFT model (`base + beta * sum_i w_i (ft_i - ref_i)`, renormalized per token) for lm-eval."""

    backend = "causal"

    def __init__(
        self,
        spec: SpecInput | None = None,
        *,
        batch_size: int | str = 8,
        max_batch_size: int | None = None,
        max_length: int | None = None,
        seed: int = 0,
        speculative_block: int = 0,
        speculative_mode: str = "exact",
        device: str | None = None,
        model_cache: Any = None,
        **spec_keys: Any,
    ) -> None:
        """`spec` (or the spec keys `base=`, `ft=`, `ref=`, ...) names the EFT model.

        `device` is lm-eval's `--device`: used only when the spec places no component itself.
        Under `accelerate launch` with several processes each rank uses its own device instead.
        `model_cache` (an `eft_eval.models.ModelCache`) shares loaded weights with other models
        built in this process (a sweep loads each model once for all its grid points).
        """
        super().__init__()
        options = backend_options({
            "batch_size": batch_size, "max_batch_size": max_batch_size, "max_length": max_length, "seed": seed,
            "speculative_block": speculative_block, "speculative_mode": speculative_mode,
        })
        parsed = parse_model_spec(spec, spec_keys)
        if options.speculative_block and not parsed.deltas:
            raise EFTEvalError("eft model_args: speculative_block needs an EFT spec with ft= (the draft model)")
        self.accelerator = distributed_accelerator()
        placement = device_override(self.accelerator, device, explicit=mentions_device(spec, spec_keys))
        try:
            self.model = EFTModel.from_spec(parsed, device=placement, model_cache=model_cache)
        except EFTEvalError as error:
            # Name the model_args key(s) whose model failed to load.
            roles = [role for role, component in parsed.components() if repr(component.label) in str(error)]
            raise EFTEvalError(f"eft model_args: {', '.join(roles) or 'model'}: {error}") from None
        self.spec = self.model.spec
        self.tokenizer = self.model.tokenizer  # the fine-tuned model's; all components share its vocabulary
        self.options = options
        self.batch_size = options.batch_size
        self.seed = options.seed
        self._max_length = options.max_length or min(
            resolve_max_length(c.model.config, c.tokenizer) for c in self.model.forward_components
        )
        check_max_length(options.max_length, self.model.forward_components)
        self._device = self.model.component_for("base").loaded.device
        if self.accelerator is not None:
            self._rank = self.accelerator.process_index
            self._world_size = self.accelerator.num_processes
        self.identity = model_identity(self.spec.to_dict(), self._max_length)
        self._warned_gen_keys: set[str] = set()
        self._cut_contexts = 0  # requests of the current call whose context was cut to fit max_length

    # -- construction from lm-eval's model_args --------------------------------------------------

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict[str, Any] | None = None) -> EFTLM:
        spec_text, options = split_model_args(arg_string)
        return cls(spec=spec_text, **merge_options(options, additional_config))

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict[str, Any], additional_config: dict[str, Any] | None = None) -> EFTLM:
        if RAW_MODEL_ARGS_KEY in arg_dict:  # `eft-eval lm-eval`: the text as the user typed it
            return cls.create_from_arg_string(with_cli_additions(arg_dict), additional_config)
        options = {k: v for k, v in arg_dict.items() if k in BACKEND_KEYS}
        spec_keys = {k: v for k, v in arg_dict.items() if k not in BACKEND_KEYS}
        # Spec keys go in as one mapping: `device`/`dtype` are spec keys here, not lm-eval's `--device`.
        spec = spec_keys["spec"] if set(spec_keys) == {"spec"} else spec_keys
        return cls(spec=spec, **merge_options(options, additional_config))

    # -- what lm-eval asks of a model ------------------------------------------------------------

    @property
    def eot_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def prefix_token_id(self) -> int:
        # As `hf`: BOS (else EOS) conditions an empty context.
        bos = self.tokenizer.bos_token_id
        return int(bos if bos is not None else self.tokenizer.eos_token_id)

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def tokenizer_name(self) -> str:
        # Chat contexts are serialized messages, the same for every EFT model (see `_chat.py`).
        return "eft-eval-messages"

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        """`hf`'s rule: the tokenizer's special tokens, unless the text already starts with BOS."""
        if add_special_tokens is None and string.startswith(self.tokenizer.decode(self.prefix_token_id)):
            add_special_tokens = False
        special = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        return list(self.tokenizer.encode(string, **special))

    def tok_decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """A marker holding the messages: each component renders them in its own format later."""
        return conversation_marker(chat_history, add_generation_prompt)

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        """For lm-eval's results: the prompt format of each distinct component."""
        if chat_template is False or chat_template is None:
            return None
        formats = {}
        for component in self.model.forward_components:
            if component.uses_chat_template:
                formats[component.role] = str(component.tokenizer.chat_template)
            else:
                plain = component.spec.format
                formats[component.role] = DEFAULT_PLAIN_TEMPLATE if plain in ("plain", "auto") else plain
        return json.dumps(formats, ensure_ascii=False)

    def get_model_info(self) -> dict[str, Any]:
        return {"eft_spec": self.spec.to_string(), "eft_identity": self.identity, "eft_processes": self.world_size}

    def set_cache_hook(self, cache_hook: CacheHook) -> None:
        """lm-eval's response cache keys requests without the model; give this model its own table."""
        super().set_cache_hook(cache_hook)
        if cache_hook.dbdict is not None:
            scope_cache_to_model(cache_hook.dbdict, self.identity)

    # -- several processes (accelerate launch) ---------------------------------------------------

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor if self.accelerator is None else self.accelerator.gather(tensor)

    def gather_object(self, obj: Any, dst: int = 0) -> list[Any] | None:
        if self.accelerator is None:
            return [obj]
        gathered: list[Any] | None = [None] * self.world_size if self.rank == dst else None
        torch.distributed.gather_object(obj=obj, object_gather_list=gathered, dst=dst)
        return gathered

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    # -- loglikelihood -----------------------------------------------------------------------------

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        self._cut_contexts = 0
        plain: list[tuple[int, Any]] = []
        chats: list[tuple[int, Any, Conversation]] = []
        for index, request in enumerate(requests):
            conversation = Conversation.from_context(request.args[0])
            if conversation is None:
                plain.append((index, request))
            else:
                chats.append((index, request, conversation))
        if plain:
            # lm-eval's own encoding (empty contexts, trailing spaces), then `_loglikelihood_tokens`.
            scores = super().loglikelihood([request for _, request in plain], disable_tqdm=disable_tqdm)
            for (index, _), score in zip(plain, scores):
                results[index] = score
        if chats:
            items = [self._chat_item(request.args, conversation) for _, request, conversation in chats]
            for (index, _, _), score in zip(chats, self._score(items, disable_tqdm)):
                results[index] = score
        self._report_cut_contexts("loglikelihood", len(requests))
        return [r for r in results if r is not None]

    def _loglikelihood_tokens(
        self, requests: list[tuple[Any, list[int], list[int]]], disable_tqdm: bool = False, **kwargs: Any
    ) -> list[tuple[float, bool]]:
        """Plain contexts: every component sees the same tokens."""
        width = len(self.model.forward_components)
        items = [_Scored(key, [list(context)] * width, list(cont)) for key, context, cont in requests]
        return self._score(items, disable_tqdm)

    def _chat_item(self, args: tuple[str, str], conversation: Conversation) -> _Scored:
        """Each component's own rendering; the continuation is tokenized after the lead's (ft's)."""
        lead_text = conversation.render(self.model.response_component)
        lead_context = self.tok_encode(lead_text,
                                       add_special_tokens=not self.model.response_component.uses_chat_template)
        whole = self.tok_encode(lead_text + args[1],
                                add_special_tokens=not self.model.response_component.uses_chat_template)
        contexts = [conversation.encode(component) for component in self.model.forward_components]
        return _Scored(key=args, contexts=contexts, continuation=whole[len(lead_context):])

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Log-likelihood of whole texts in disjoint windows of `max_length` tokens (as `hf`)."""
        items: list[_Scored] = []
        owners: list[int] = []
        width = len(self.model.forward_components)
        for index, request in enumerate(requests):
            windows = get_rolling_token_windows(
                token_list=self.tok_encode(request.args[0]),
                prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length,
                context_len=1,
            )
            for context, continuation in map(make_disjoint_window, windows):
                items.append(_Scored(None, [list(context)] * width, list(continuation)))
                owners.append(index)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, self._score(items, disable_tqdm)):
            totals[owner] += logprob
        for request, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, total)
        return totals

    def _score(self, items: list[_Scored], disable_tqdm: bool) -> list[tuple[float, bool]]:
        """(sum of EFT log-probs of the continuation, whether it is the greedy one), batched."""
        results: list[tuple[float, bool] | None] = [None] * len(items)
        order = sorted(range(len(items)),
                       key=lambda i: -max(len(c) for c in items[i].contexts) - len(items[i].continuation))
        bar = tqdm(total=len(items), desc="scoring", unit="request", disable=disable_tqdm or self.rank != 0)
        for batch in chunks(order, self.batch_size):
            continuations = [items[i].continuation for i in batch]
            self._cut_contexts += sum(
                any(len(c) + len(items[i].continuation) > self.max_length + 1 for c in items[i].contexts) for i in batch
            )
            contexts = [
                [self._fit_context(items[i].contexts[c], len(items[i].continuation)) for i in batch]
                for c in range(len(self.model.forward_components))
            ]
            for i, dist, cont in zip(batch, self.model.score_ids(contexts, continuations), continuations):
                target = torch.tensor(cont, dtype=torch.long, device=dist.device)
                picked = dist.gather(-1, target.unsqueeze(-1)).squeeze(-1)
                answer = (float(picked.sum()), bool((dist.argmax(-1) == target).all()))
                results[i] = answer
                if items[i].key is not None:
                    self.cache_hook.add_partial("loglikelihood", items[i].key, answer)
            bar.update(len(batch))
        bar.close()
        return [r for r in results if r is not None]

    def _fit_context(self, context: list[int], continuation_length: int) -> list[int]:
        """Drop context tokens from the left so that context + continuation fit (as `hf`)."""
        if not 0 < continuation_length <= self.max_length:
            raise EFTEvalError(
                f"continuation of {continuation_length} tokens: need between 1 and max_length={self.max_length}"
            )
        return context[-(self.max_length + 1 - continuation_length):]

    # -- generation --------------------------------------------------------------------------------

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Greedy or sampled EFT generations, batched per distinct gen_kwargs, longest prompts first; each a
        `GeneratedText` (its token count and finish reason ride along)."""
        results = [""] * len(requests)
        bar = tqdm(total=len(requests), desc="generating", unit="response", disable=disable_tqdm or self.rank != 0)

        def finished(block: list[tuple[int, None, str]]) -> None:
            for index, _, text in block:
                results[index] = text
                self.cache_hook.add_partial("generate_until", requests[index].args, text)
            bar.update(len(block))

        self._cut_contexts = self.generate_rows(requests, {index: [None] for index in range(len(requests))}, finished)
        bar.close()
        self._report_cut_contexts("generate_until", len(requests))
        return results

    def generate_rows(
        self, requests: Sequence[Any], rows: Mapping[int, Sequence[T]],
        on_block: Callable[[list[tuple[int, T, str]]], None], row_weights: Callable[[T], Sequence[float]] | None = None,
    ) -> int:
        """Generate one row per tag in `rows[i]` for each request index `i`; `on_block` gets each
        block's (request index, tag, text) as it finishes. Returns how many contexts were cut to fit.

        Requests are grouped by gen_kwargs, longest prompts first, and cut into blocks of
        `batch_size` requests, all rows of a block in one batch; `row_weights(tag)`, when given, is
        that row's delta weights (a sweep's grid point). A row's sample depends only on (seed,
        prompt, copy, step): copies of one request (lm-eval's `repeats`) get distinct randomness,
        whatever the batching and whichever process runs it.
        """
        keys = sampling_keys(requests)
        groups: dict[str, list[int]] = {}
        for index in rows:
            groups.setdefault(json.dumps(requests[index].args[1], sort_keys=True, default=str), []).append(index)
        cut = 0
        for indices in groups.values():
            config = self._sampling_config(requests[indices[0]].args[1], requests[indices[0]].task_name)
            fitted = {i: self._generation_prompt(requests[i].args[0], config.max_new_tokens) for i in indices}
            cut += sum(was_cut for _, was_cut in fitted.values())
            indices.sort(key=lambda i: -max(len(ids) for ids in fitted[i][0]))
            for block in chunks(indices, self.batch_size):
                batch = [(i, tag) for i in block for tag in rows[i]]
                outputs = self.model.generate_ids(
                    [[fitted[i][0][c] for i, _ in batch] for c in range(len(self.model.forward_components))],
                    config, [keys[i] for i, _ in batch], batch_size=len(batch),
                    speculative_block=self.options.speculative_block, speculative_mode=self.options.speculative_mode,
                    row_weights=None if row_weights is None else [list(row_weights(tag)) for _, tag in batch],
                )
                on_block([(i, tag, GeneratedText.of(postprocess_generated_text(output.text, list(config.stop), None),
                                                    output))
                          for (i, tag), output in zip(batch, outputs)])
        return cut

    def _report_cut_contexts(self, kind: str, total: int) -> None:
        """One warning per call (lm-eval sends all requests of a kind in one call, so once per run)."""
        if self._cut_contexts:
            logger.warning(
                "eft: %d of %d %s requests do not fit max_length=%d tokens: their contexts were cut from the "
                "left, as lm-eval's hf backend does (a larger max_length= in model_args, if the models allow it)",
                self._cut_contexts, total, kind, self.max_length,
            )

    def _sampling_config(self, gen_kwargs: Mapping[str, Any], task_name: str | None) -> SamplingConfig:
        ignored = sorted(ignored_keys(gen_kwargs) - self._warned_gen_keys)
        if ignored:
            logger.warning("eft backend ignores gen_kwargs %s (it honours %s)", ignored, sorted(HONOURED))
            self._warned_gen_keys.update(ignored)
        return sampling_config(gen_kwargs, self.seed, gen_kwargs_source(task_name))

    def _generation_prompt(self, context: str, max_new_tokens: int) -> tuple[list[list[int]], bool]:
        """Per-unique-component prompt ids, left-truncated to leave room for the answer (as `hf`),
        and whether any was cut."""
        room = self.max_length - max_new_tokens
        if room <= 0:
            raise EFTEvalError(f"max_gen_toks={max_new_tokens} must be below max_length={self.max_length}")
        conversation = Conversation.from_context(context)
        if conversation is None:
            full = [self.tok_encode(context)] * len(self.model.forward_components)
        else:
            full = [conversation.encode(component) for component in self.model.forward_components]
        return [ids[-room:] for ids in full], any(len(ids) > room for ids in full)


__all__ = ["EFTLM"]
