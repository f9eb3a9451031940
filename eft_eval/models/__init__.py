"""EFT itself: specs, components, composition, decoding, speculative decoding, scoring, presets.

    _spec.py         what an EFT model is made of (`EFTSpec`), parsed from strings, dicts, YAML
    _spec_keys.py    which role each spec key names (one role, one key; deltas numbered without gaps)
    _components.py   one loaded model plus how a prompt is rendered for it
    _compose.py      the EFT formula on log-prob tensors (pure, no loading)
    _eft_model.py    `EFTModel`: load a spec, score and generate
    _decoding.py     token-by-token EFT decoding with per-component KV caches
    _continuous.py   continuous batching: rows join and leave a running batch between steps
    _speculative.py  speculative EFT decoding (the small fine-tuned model drafts)
    _sampling.py     sampling settings, temperature/top-k/top-p filtering, next-token choice
    _devices.py      which devices a component can be loaded onto, checked before loading
    _scoring.py      log-probs of given continuations
    _kv_cache.py     transformers' KV-cache API across versions
    _presets.py      model families, `llama2:up`-style presets, the offline SmolLM2 file
    _revision.py     which weights a component is: hub snapshot commit or a digest of local files
    commands.py      `eft-eval generate`

Modules are private; other packages import these names from `eft_eval.models`. They are
re-exported lazily, so importing the package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "Component": "_components",
    "LoadedModel": "_components",
    "ModelCache": "_components",
    "Message": "_components",
    "Prompt": "_components",
    "check_context": "_components",
    "cached_gguf": "_components",
    "load_gguf": "_components",
    "context_length": "_components",
    "context_overflow": "_components",
    "compose_logprobs": "_compose",
    "check_device": "_devices",
    "BatchStep": "_continuous",
    "ContinuousBatch": "_continuous",
    "JoiningRow": "_continuous",
    "ComponentStream": "_decoding",
    "DecodeStep": "_decoding",
    "FINISH_REASONS": "_decoding",
    "Generation": "_decoding",
    "RowOutputs": "_decoding",
    "decode": "_decoding",
    "EFTModel": "_eft_model",
    "component_revision": "_revision",
    "file_sha256": "_revision",
    "cache_kwargs": "_kv_cache",
    "output_cache": "_kv_cache",
    "CONFIGURATIONS": "_presets",
    "FAMILIES": "_presets",
    "Family": "_presets",
    "expand_preset": "_presets",
    "preset_names": "_presets",
    "resolve_preset": "_presets",
    "SMOLLM2_GGUF": "_presets",
    "SMOLLM2_OFFLINE": "_presets",
    "smollm2_gguf": "_presets",
    "SamplingConfig": "_sampling",
    "choose_tokens_per_row": "_sampling",
    "prompt_key": "_sampling",
    "seeded_key": "_sampling",
    "continuation_logprobs": "_scoring",
    "DEFAULT_PLAIN_TEMPLATE": "_spec",
    "ComponentSpec": "_spec",
    "DeltaSpec": "_spec",
    "delta_roles": "_spec",
    "EFTSpec": "_spec",
    "join_compact": "_spec",
    "parse_spec": "_spec",
    "split_compact": "_spec",
    "SpeculativeStats": "_speculative",
    "check_speculative": "_speculative",
    "chunks": "_eft_model",
    "draft_component_index": "_eft_model",
    "speculative_decoder": "_eft_model",
}

__all__ = [
    "CONFIGURATIONS",
    "DEFAULT_PLAIN_TEMPLATE",
    "FAMILIES",
    "FINISH_REASONS",
    "BatchStep",
    "Component",
    "ComponentSpec",
    "ComponentStream",
    "ContinuousBatch",
    "DecodeStep",
    "DeltaSpec",
    "EFTModel",
    "EFTSpec",
    "Family",
    "Generation",
    "JoiningRow",
    "LoadedModel",
    "Message",
    "ModelCache",
    "Prompt",
    "RowOutputs",
    "SMOLLM2_GGUF",
    "SMOLLM2_OFFLINE",
    "SamplingConfig",
    "SpeculativeStats",
    "cache_kwargs",
    "cached_gguf",
    "check_context",
    "check_device",
    "check_speculative",
    "choose_tokens_per_row",
    "chunks",
    "component_revision",
    "compose_logprobs",
    "context_length",
    "context_overflow",
    "continuation_logprobs",
    "decode",
    "delta_roles",
    "draft_component_index",
    "expand_preset",
    "file_sha256",
    "join_compact",
    "load_gguf",
    "output_cache",
    "parse_spec",
    "preset_names",
    "prompt_key",
    "resolve_preset",
    "seeded_key",
    "smollm2_gguf",
    "speculative_decoder",
    "split_compact",
]

if TYPE_CHECKING:
    from eft_eval.models._components import (
        Component,
        LoadedModel,
        Message,
        ModelCache,
        Prompt,
        cached_gguf,
        check_context,
        context_length,
        context_overflow,
        load_gguf,
    )
    from eft_eval.models._compose import compose_logprobs
    from eft_eval.models._continuous import BatchStep, ContinuousBatch, JoiningRow
    from eft_eval.models._decoding import (
        FINISH_REASONS,
        ComponentStream,
        DecodeStep,
        Generation,
        RowOutputs,
        decode,
    )
    from eft_eval.models._devices import check_device
    from eft_eval.models._eft_model import (
        EFTModel,
        chunks,
        draft_component_index,
        speculative_decoder,
    )
    from eft_eval.models._kv_cache import cache_kwargs, output_cache
    from eft_eval.models._presets import (
        CONFIGURATIONS,
        FAMILIES,
        SMOLLM2_GGUF,
        SMOLLM2_OFFLINE,
        Family,
        expand_preset,
        preset_names,
        resolve_preset,
        smollm2_gguf,
    )
    from eft_eval.models._revision import component_revision, file_sha256
    from eft_eval.models._sampling import SamplingConfig, choose_tokens_per_row, prompt_key, seeded_key
    from eft_eval.models._scoring import continuation_logprobs
    from eft_eval.models._spec import (
        DEFAULT_PLAIN_TEMPLATE,
        ComponentSpec,
        DeltaSpec,
        EFTSpec,
        delta_roles,
        join_compact,
        parse_spec,
        split_compact,
    )
    from eft_eval.models._speculative import SpeculativeStats, check_speculative


__getattr__ = lazy_exports(__name__, _EXPORTS)
