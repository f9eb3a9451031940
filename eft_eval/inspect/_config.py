"""What an inspect call asks for, in eft-eval's terms: `-M` model args, `GenerateConfig`, chat messages.

    inspect eval hh.py --model eft/up -M base=LARGE -M ft=SMALL_CHAT -M ref=SMALL   # spec keys
    inspect eval hh.py --model eft/up -M spec=up.yaml                               # a spec file
    inspect eval hh.py --model eft/up -M preset=llama2:up -M dtype=bf16             # a preset

Every `-M` key that is not a provider option (`PROVIDER_KEYS`) is an EFT spec key and goes to
`parse_spec` unchanged, as lm-eval's `model_args` do, so both accept exactly the same specs.

`GenerateConfig` maps onto `SamplingConfig` as `eft-eval serve` maps an OpenAI request (the same
defaults: temperature 1, seed 0, choice `i` samples with `seed + i`). A setting EFT sampling cannot
honour (a penalty, a logit bias, a response schema, ...) is refused with one line naming it: an
evaluation that silently ran without it would report numbers of another configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eft_eval.errors import EFTEvalError, short_repr
from eft_eval.models import EFTSpec, Prompt, SamplingConfig, join_compact, parse_spec
from eft_eval.parsing import parse_number

DEFAULT_MAX_TOKENS = 256
"""`max_tokens` when neither the task nor the command line sets it (`eft-eval serve`'s default)."""


@dataclass(frozen=True)
class ProviderOptions:
    """Settings of the provider itself (`-M` keys that are not spec keys)."""

    batch_size: int = 16
    """Most samples decoded in one batch. Inspect should keep about twice as many samples in flight
    (`--max-connections`), so that the next batch waits ready while one decodes."""
    batch_wait_s: float = 0.025
    """How long a new batch waits for more concurrent samples (`BatchEngine`'s `batch_wait_s`)."""


PROVIDER_KEYS = ("batch_size", "batch_wait_s")

CONSUMED_BY_INSPECT = frozenset({
    "max_retries", "timeout", "attempt_timeout", "stream_idle_timeout", "max_connections", "adaptive_connections",
    "system_message", "max_tool_output", "cache", "fail_on_refusal", "fallback_models",
})
"""`GenerateConfig` fields inspect applies itself, before or around the provider's `generate`."""

HONOURED = frozenset({"max_tokens", "temperature", "top_p", "top_k", "seed", "stop_seqs", "logprobs",
                      "top_logprobs", "num_choices"})
"""`GenerateConfig` fields that map onto EFT sampling (see `sampling_configs`)."""


def model_spec(model_args: Mapping[str, Any]) -> tuple[EFTSpec, ProviderOptions]:
    """The EFT spec and provider options of `-M` model args (`spec=FILE` or spec keys, not both)."""
    values = {key: _text(value) for key, value in model_args.items()}
    options = {key: values.pop(key) for key in PROVIDER_KEYS if key in values}
    if not values:
        raise EFTEvalError("eft model: no spec given: pass -M base=... -M ft=... -M ref=..., "
                           "-M spec=FILE or -M preset=NAME")
    if "spec" in values:
        extra = sorted(set(values) - {"spec"})
        if extra:
            raise EFTEvalError(f"eft model: give the spec either as -M spec=... or as keys, not both (extra: {extra})")
        spec = parse_spec(values["spec"])
    else:
        spec = parse_spec(join_compact(values))
    return spec, provider_options(options)


def provider_options(values: Mapping[str, str]) -> ProviderOptions:
    where = "eft model args"
    return ProviderOptions(
        batch_size=int(parse_number(values.get("batch_size", ProviderOptions.batch_size), "batch_size", where,
                                    integer=True, minimum=1)),
        batch_wait_s=float(parse_number(values.get("batch_wait_s", ProviderOptions.batch_wait_s), "batch_wait_s",
                                        where, minimum=0, maximum=60)),
    )


def _text(value: Any) -> str:
    """A `-M` value as the spec parser reads it: inspect's CLI turns `true` into True and `2` into 2."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@dataclass(frozen=True)
class Request:
    """One `generate` call in eft-eval's terms."""

    configs: list[SamplingConfig]
    """One per choice: choice `i` samples with `seed + i`."""
    logprobs: int | None
    """None: no log-probs; k >= 0: each token's EFT log-prob and the top k."""


def sampling_request(config: Any) -> Request:
    """`GenerateConfig` -> one `SamplingConfig` per choice, refusing what EFT sampling cannot honour."""
    unsupported = sorted(
        name for name, value in config.model_dump(exclude_none=True).items()
        if name not in HONOURED and name not in CONSUMED_BY_INSPECT and value not in (False, [], {})
    )
    if unsupported:
        name = unsupported[0]
        raise EFTEvalError(f"eft model: GenerateConfig.{name}={short_repr(getattr(config, name))} cannot be honoured "
                           f"by EFT sampling (supported: {', '.join(sorted(HONOURED))})")
    temperature = 1.0 if config.temperature is None else float(config.temperature)
    choices = 1 if config.num_choices is None else int(parse_number(config.num_choices, "num_choices",
                                                                     "GenerateConfig", integer=True, minimum=1))
    seed = 0 if config.seed is None else int(config.seed)
    try:
        configs = [SamplingConfig(
            max_new_tokens=DEFAULT_MAX_TOKENS if config.max_tokens is None else config.max_tokens,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else 1.0,
            top_p=1.0 if config.top_p is None else config.top_p,
            top_k=config.top_k or 0,
            seed=seed + index,
            stop=tuple(config.stop_seqs or ()),
        ) for index in range(choices)]
    except EFTEvalError as error:
        raise EFTEvalError(f"eft model: GenerateConfig: {error}") from None
    logprobs: int | None = None
    if config.logprobs:
        logprobs = int(parse_number(config.top_logprobs or 0, "top_logprobs", "GenerateConfig", integer=True,
                                    minimum=0, maximum=20))
    elif config.top_logprobs:
        raise EFTEvalError("eft model: GenerateConfig.top_logprobs needs logprobs=True (as OpenAI's API)")
    return Request(configs, logprobs)


def chat_prompt(messages: Sequence[Any]) -> Prompt:
    """Inspect chat messages as the prompt every component renders (`{role, content}` dicts).

    As in `eft-eval serve`, a lone user message is the plain query `generate` takes: the same
    rendering and the same sampling key, so a one-turn sample is what `eft-eval generate` gives.
    """
    prompt: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        role = message.role
        if role not in ("system", "user", "assistant"):
            raise EFTEvalError(f"eft model: message {index} has role {role!r}: EFT models take system, user and "
                               "assistant messages (no tools)")
        if role == "assistant" and getattr(message, "tool_calls", None):
            raise EFTEvalError(f"eft model: message {index} holds tool calls: EFT models do not call tools")
        content = message.content
        if not isinstance(content, str):
            kinds = {part.type for part in content}
            if kinds - {"text", "reasoning"}:
                raise EFTEvalError(f"eft model: message {index} holds {', '.join(sorted(kinds - {'text'}))} "
                                   "content: EFT models read text only")
            content = "".join(part.text for part in content if part.type == "text")
        prompt.append({"role": role, "content": content})
    if not prompt:
        raise EFTEvalError("eft model: no messages to answer")
    if len(prompt) == 1 and prompt[0]["role"] == "user":
        return prompt[0]["content"]
    return prompt


__all__ = ["CONSUMED_BY_INSPECT", "DEFAULT_MAX_TOKENS", "HONOURED", "PROVIDER_KEYS", "ProviderOptions", "Request",
           "chat_prompt", "model_spec", "provider_options", "sampling_request"]
