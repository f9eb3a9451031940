"""lm-eval `model_args` for the `eft` backend: the EFT spec keys plus a few backend options.

    --model_args base=LARGE,ft=SMALL_CHAT,ref=SMALL,beta=1.0,batch_size=8,max_length=2048,seed=0

Every key that is not a backend option is an EFT spec key and goes to `parse_spec` unchanged, so
`model_args` accept exactly what the rest of the project accepts (presets included:
`preset=llama2:up,dtype=bf16,batch_size=8`) and fail with the same messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.models import (
    EFTSpec,
    check_speculative,
    context_length,
    join_compact,
    parse_spec,
    split_compact,
)

SpecInput = EFTSpec | str | Mapping[str, Any] | Path

DEFAULT_AUTO_BATCH_SIZE = 16


@dataclass(frozen=True)
class BackendOptions:
    """Settings of the lm-eval backend itself (not part of the EFT model's identity)."""

    batch_size: int = 8
    """Prompts per forward pass / decoding batch. `auto` (lm-eval's) means `max_batch_size` or 16:
    EFT runs several models per step, so lm-eval's one-model memory probe would not tell."""
    max_length: int | None = None
    """Context window in tokens; default: the smallest any component supports."""
    seed: int = 0
    """Seed of the EFT sampler (per prompt and step, so results do not depend on batching)."""
    speculative_block: int = 0
    """K > 0: speculative EFT decoding for `generate_until`, the fine-tuned model drafting K tokens."""
    speculative_mode: str = "exact"
    """`exact` (the same tokens as plain decoding) or `rejection` (the same distribution)."""


BACKEND_KEYS = ("batch_size", "max_batch_size", "max_length", "seed", "speculative_block", "speculative_mode")

RAW_MODEL_ARGS_KEY = "eft_model_args"
"""lm-eval's CLI parses `--model_args` itself: `base=123` arrives as an int, `ft_system_prompt=true`
as a bool, `1e3` as a float, and `beta=1,beta=2` as beta 2 with a log line. `eft-eval lm-eval`
hands lm-eval the text unparsed under this one key instead (`--model_args '{"eft_model_args": ...}'`,
lm-eval's JSON form), and the backend parses it with the spec parser every other entry point uses."""

_MODEL_FLAGS = ("--model", "-M")
_MODEL_ARGS_FLAGS = ("--model_args", "-a")


def carry_model_args_unparsed(argv: Sequence[str]) -> list[str]:
    """lm-eval CLI arguments with an `eft` run's `--model_args` texts joined into one JSON object
    that carries the text unparsed (see `RAW_MODEL_ARGS_KEY`). Other runs are left untouched,
    and so is `--model_args` given as JSON (its values are typed by the user)."""
    if _flag_values(argv, _MODEL_FLAGS)[0] != ["eft"]:
        return list(argv)
    texts, rest, position = _flag_values(argv, _MODEL_ARGS_FLAGS)
    if not texts or any(text.lstrip().startswith("{") for text in texts):
        return list(argv)
    carried = json.dumps({RAW_MODEL_ARGS_KEY: ",".join(texts)}, ensure_ascii=False)
    return [*rest[:position], "--model_args", carried, *rest[position:]]


def with_cli_additions(arg_dict: Mapping[str, Any]) -> str:
    """The model_args text carried by `carry_model_args_unparsed`, plus what lm-eval's CLI added to
    the dict itself (`--trust_remote_code` adds `trust_remote_code=True`); a key set both ways is
    an error, as any key given twice."""
    text = str(arg_dict[RAW_MODEL_ARGS_KEY])
    added = {k: v for k, v in arg_dict.items() if k != RAW_MODEL_ARGS_KEY}
    if not added:
        return text
    if "=" in text:
        pairs: dict[str, Any] = dict(split_compact(text))
    elif text.strip().endswith((".yaml", ".yml")):
        raise EFTEvalError(f"eft model_args: set {min(added)} in the spec file {text.strip()} (an "
                           "lm-eval flag gave it)")
    else:
        pairs = {"base": text.strip()}  # a plain model name is its base
    for key, value in added.items():
        if key in pairs:
            raise EFTEvalError(f"eft model_args: {key} is given in --model_args and by another lm-eval "
                               "flag: give it once")
        pairs[key] = str(value).lower() if isinstance(value, bool) else value
    return join_compact(pairs)


def _flag_values(argv: Sequence[str], flags: tuple[str, str]) -> tuple[list[str], list[str], int]:
    """(the values of `flags`, argv without them, where the first one stood), as lm-eval's argparse
    reads them: `--flag V1 V2`, `--flag=V`, `-fV`; values run until the next option."""
    values: list[str] = []
    rest: list[str] = []
    position: int | None = None
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        inline = _inline_value(item, flags)
        index += 1
        if item not in flags and inline is None:
            rest.append(item)
            continue
        position = len(rest) if position is None else position
        if inline is not None:
            values.append(inline)
            continue
        while index < len(items) and not items[index].startswith("-"):
            values.append(items[index])
            index += 1
    return values, rest, position or 0


def _inline_value(item: str, flags: tuple[str, str]) -> str | None:
    long_flag, short_flag = flags
    if item.startswith(long_flag + "="):
        return item[len(long_flag) + 1:]
    if item.startswith(short_flag) and not item.startswith("--") and len(item) > len(short_flag):
        value = item[len(short_flag):]
        return value.removeprefix("=")
    return None


def split_model_args(text: str) -> tuple[str, dict[str, str]]:
    """Split a compact `model_args` string into (EFT spec string, backend option values).

    Values stay strings (lm-eval's own parser would turn a model folder named `1e5` into a float).
    """
    if "=" not in text:  # a plain model name or a spec YAML path
        return text.strip(), {}
    pairs = split_compact(text)
    options = {key: value for key, value in pairs.items() if key in BACKEND_KEYS}
    spec_keys = {k: v for k, v in pairs.items() if k not in BACKEND_KEYS}
    if "spec" in spec_keys:  # `spec=my_spec.yaml,batch_size=8`, as the dict form of model_args takes it
        extra = sorted(set(spec_keys) - {"spec"})
        if extra:
            raise EFTEvalError("eft model_args: give the spec either as spec=... or as keys, not both "
                               f"(extra: {extra})")
        return spec_keys["spec"], options
    return join_compact(spec_keys), options


def check_max_length(max_length: int | None, components: Sequence[Any]) -> None:
    """A max_length past a component's context would not cut long requests to what the model
    supports (past it GPT-2 fails, RoPE models run on untrained positions)."""
    for component in components:
        supported = context_length(component.model)
        if max_length is not None and supported is not None and max_length > supported:
            raise EFTEvalError(
                f"eft model_args: max_length={max_length} is more than {component.role} ({component.spec.label}) "
                f"supports ({supported} tokens): lower it or leave it out"
            )


def merge_options(options: Mapping[str, Any], additional: Mapping[str, Any] | None) -> dict[str, Any]:
    """lm-eval's `batch_size`/`max_batch_size`/`device` (CLI defaults), then `model_args` on top."""
    merged = {k: v for k, v in (additional or {}).items() if v is not None}
    merged.update(options)
    return merged


def backend_options(values: Mapping[str, Any]) -> BackendOptions:
    """Typed backend options from `model_args` / lm-eval's `batch_size`, `max_batch_size`."""
    max_batch = _optional_int(values, "max_batch_size")
    batch = values.get("batch_size", BackendOptions.batch_size)
    if isinstance(batch, str) and re.fullmatch(r"auto(:\d+)?", batch.strip()):
        batch = max_batch or DEFAULT_AUTO_BATCH_SIZE
    batch_size = _optional_int({"batch_size": batch}, "batch_size")
    if batch_size is None or batch_size < 1:
        raise EFTEvalError(f"eft model_args: batch_size={batch!r} must be a positive integer or 'auto'")
    max_length = _optional_int(values, "max_length")
    if max_length is not None and max_length < 2:
        raise EFTEvalError(f"eft model_args: max_length={max_length} must be at least 2")
    seed = _optional_int(values, "seed")
    block = _optional_int(values, "speculative_block") or 0
    try:
        mode = check_speculative(block, str(values.get("speculative_mode") or "exact"))
    except EFTEvalError as error:
        raise EFTEvalError(f"eft model_args: {error}") from None
    return BackendOptions(
        batch_size=batch_size, max_length=max_length, seed=seed or 0, speculative_block=block, speculative_mode=mode
    )


def _optional_int(values: Mapping[str, Any], key: str) -> int | None:
    raw = values.get(key)
    if raw is None or raw == "" or str(raw).lower() == "none":
        return None
    try:
        number = float(raw)
        if isinstance(raw, bool) or not number.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise EFTEvalError(f"eft model_args: {key}={raw!r} is not an integer") from None
    return int(number)


def parse_model_spec(spec: SpecInput | None, spec_keys: Mapping[str, Any]) -> EFTSpec:
    """The EFT spec from `spec=` (string, mapping, YAML path, EFTSpec) or from separate keys."""
    if spec is not None and spec_keys:
        raise EFTEvalError(
            f"eft model_args: give the spec either as spec=... or as keys, not both (extra: {sorted(spec_keys)})"
        )
    value = spec if spec is not None else dict(spec_keys)
    if isinstance(value, Mapping) and not value or isinstance(value, str) and not value.strip():
        raise EFTEvalError("eft model_args: no model given: add base=MODEL_OR_PATH (and ft=..., ref=... for EFT)")
    try:
        return parse_spec(value)
    except EFTEvalError as error:
        raise EFTEvalError(f"eft model_args: {error}") from None


def mentions_device(spec: SpecInput | None, spec_keys: Mapping[str, Any]) -> bool:
    """Whether the user placed the model: then lm-eval's `--device` (default cuda:0) is ignored."""
    if spec_keys:
        keys: list[str] = list(spec_keys)
    elif isinstance(spec, str) and "=" in spec:
        keys = list(split_compact(spec))
    elif isinstance(spec, Mapping):
        keys = list(spec)
    elif isinstance(spec, str):
        return spec.strip().endswith((".yaml", ".yml"))  # a spec file places its models itself
    else:
        return spec is not None  # an EFTSpec / Path is explicit
    return any(key == "device" or key.endswith("_device") for key in keys)


__all__ = [
    "BACKEND_KEYS",
    "RAW_MODEL_ARGS_KEY",
    "BackendOptions",
    "backend_options",
    "carry_model_args_unparsed",
    "check_max_length",
    "mentions_device",
    "merge_options",
    "parse_model_spec",
    "split_model_args",
    "with_cli_additions",
]
