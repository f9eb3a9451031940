"""Tiny up-scaling EFT families on which speculative decoding has something to gain.

Random tiny models are useless for speculative decoding: an unrelated small fine-tuned model agrees
with the EFT model on ~1/vocab of tokens. Real up-scaling works because a large and a small
pre-trained model of one family mostly agree, so `log p_base_large - log p_base_small` is small
and the EFT conditional stays close to the small fine-tuned model's. We build that deliberately:

- `ref` (small pre-trained): a random tiny llama;
- `ft` (small fine-tuned): `ref`'s weights moved by relative noise `ft_noise` (a "fine-tune");
- `base` (large pre-trained): deeper and with a wider MLP; its first layers, embeddings, final norm
  and head are exactly `ref`'s (extra MLP units zeroed, so they add cost but not output), and its
  extra layers are random with output projections scaled by `base_noise`, so they nudge the
  residual stream. Its logits are `ref`'s plus a perturbation whose size `base_noise` sets.

The EFT conditional is then `p_ft * p_base / p_ref`, close to `p_ft`: agreement is tuned by
`base_noise` and cost by `extra_layers` / `large_intermediate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FamilyShape:
    small_hidden: int = 64
    small_layers: int = 2
    extra_layers: int = 28
    """Layers the large base has beyond the small models'."""
    large_intermediate: int = 512
    """MLP width of the large base (the small models use 4 * small_hidden)."""
    ft_noise: float = 0.3
    """Relative weight noise turning `ref` into `ft`."""
    base_noise: float = 0.004
    """Scale of the large base's extra layers' output projections (0: base computes `ref`)."""
    seed: int = 0


def build_family(tokenizer: Any, shape: FamilyShape = FamilyShape()) -> dict[str, Any]:
    """`{"base": large pre-trained, "ft": small fine-tuned, "ref": small pre-trained}` models."""
    import torch  # here, not at import time: the CLI registers the bench without loading torch
    from transformers import LlamaForCausalLM

    from eft_eval.testing import tiny_llama

    ref = tiny_llama(tokenizer, hidden_size=shape.small_hidden, num_layers=shape.small_layers, seed=shape.seed)
    ft = tiny_llama(tokenizer, hidden_size=shape.small_hidden, num_layers=shape.small_layers, seed=shape.seed)
    generator = torch.Generator().manual_seed(shape.seed + 1)
    with torch.no_grad():
        for param in ft.parameters():
            noise = torch.randn(param.shape, generator=generator) * param.std().clamp(min=1e-3)
            param.add_(shape.ft_noise * noise)

    config = ref.config.__class__(**ref.config.to_dict())
    config.num_hidden_layers = shape.small_layers + shape.extra_layers
    config.intermediate_size = shape.large_intermediate
    torch.manual_seed(shape.seed + 2)
    base = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        _embed_small_model(base, ref, shape)
    return {"base": base, "ft": ft, "ref": ref}


def _embed_small_model(base: Any, ref: Any, shape: FamilyShape) -> None:
    """Copy `ref` into the first layers of `base` and shrink the extra layers' contributions."""
    base.model.embed_tokens.weight.copy_(ref.model.embed_tokens.weight)
    base.model.norm.weight.copy_(ref.model.norm.weight)
    base.lm_head.weight.copy_(ref.lm_head.weight)
    small_width = ref.config.intermediate_size
    for index, layer in enumerate(base.model.layers):
        if index < shape.small_layers:
            source = ref.model.layers[index]
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                getattr(layer.self_attn, name).weight.copy_(getattr(source.self_attn, name).weight)
            layer.input_layernorm.weight.copy_(source.input_layernorm.weight)
            layer.post_attention_layernorm.weight.copy_(source.post_attention_layernorm.weight)
            # Extra MLP units get zero weights: silu(0) * 0 = 0, so the layer computes `ref`'s exactly.
            for name in ("gate_proj", "up_proj"):
                weight = getattr(layer.mlp, name).weight
                weight.zero_()
                weight[:small_width].copy_(getattr(source.mlp, name).weight)
            layer.mlp.down_proj.weight.zero_()
            layer.mlp.down_proj.weight[:, :small_width].copy_(source.mlp.down_proj.weight)
        else:
            layer.self_attn.o_proj.weight.mul_(shape.base_noise)
            layer.mlp.down_proj.weight.mul_(shape.base_noise)


def family_eft_model(models: dict[str, Any], tokenizer: Any, top_p_weights: float | None = None) -> Any:
    """An up-scaling `EFTModel` over in-memory models (ft gets the chat template, others plain)."""
    from eft_eval.models import (
        Component,
        ComponentSpec,
        DeltaSpec,
        EFTModel,
        EFTSpec,
        LoadedModel,
    )

    specs = {
        role: ComponentSpec(model=f"<in-memory {role}>", format="chat" if role == "ft" else "plain")
        for role in models
    }
    if set(models) == {"base", "ft", "ref"}:
        spec = EFTSpec(base=specs["base"], deltas=(DeltaSpec(ft=specs["ft"], ref=specs["ref"]),),
                       top_p_weights=top_p_weights)
        roles = [("base", "base"), ("ft", "ft"), ("ref", "ref")]
    else:  # one model alone, as a plain (non-EFT) model
        [(name, _)] = models.items()
        spec = EFTSpec(base=specs[name])
        roles = [("base", name)]
    components = [Component(role, specs[name], LoadedModel(models[name], tokenizer)) for role, name in roles]
    return EFTModel(spec, components)
