"""lm-eval `model_args` for the `eft` backend: the EFT spec keys plus a few backend options.

    --model_args base=LARGE,ft=SMALL_CHAT,ref=SMALL,beta=1.0,batch_size=8,max_length=2048,seed=0

Every key that is not a backend option is an EFT spec key and goes to `parse_spec` unchanged, so
`model_args` accept exactly what the rest of the project accepts (presets included:
`preset=llama2:up,dtype=bf16,batch_size=8`) and fail with the same messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.models import (
    EFTSpec,
    check_speculative,
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


def split_model_args(text: str) -> tuple[str, dict[str, str]]:
    """Split a compact `model_args` string into (EFT spec string, backend option values).

    Values stay strings (lm-eval's own parser would turn a model folder named `1e5` into a float).
    """
    if "=" not in text:  # a plain model name or a spec YAML path
        return text.strip(), {}
    pairs = split_compact(text)
    options = {key: value for key, value in pairs.items() if key in BACKEND_KEYS}
    return join_compact({k: v for k, v in pairs.items() if k not in BACKEND_KEYS}), options


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
    "BackendOptions",
    "backend_options",
    "mentions_device",
    "parse_model_spec",
    "split_model_args",
]
