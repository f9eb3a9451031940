"""Tiny llama-architecture models built from configs in-process (no downloads).

For tests, benchmarks and offline smoke runs: a small byte-level BPE tokenizer with a chat template,
and randomly initialised `LlamaForCausalLM`s of any size that share it. A "family" folder holds the
four roles EFT needs (small/large pre-trained, small/large fine-tuned) as local model folders.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Human: How do I bake bread? Assistant: Mix flour, "
    "water, salt and yeast, knead, let it rise, then bake. Why is the sky blue? Sunlight scatters off "
    "air molecules, and blue light scatters the most. Explain like I'm five: plants make food from "
    "light, water and air. What is the capital of France? Paris is the capital of France. "
    "I cannot help with that request because it could cause harm. 0 1 2 3 4 5 6 7 8 9 Score: Reason:"
)
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@functools.lru_cache(maxsize=1)
def _tokenizer_json(vocab_size: int) -> str:
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return str(tokenizer.to_str())


def tiny_tokenizer(vocab_size: int = 384) -> Any:
    """A byte-level BPE tokenizer (BOS `<s>`, EOS `</s>`, pad `<pad>`) with a chat template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        bos_token="<s>", eos_token="</s>", pad_token="<pad>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_llama(
    tokenizer: Any,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    vocab_padding: int = 0,
    seed: int = 0,
    max_positions: int = 2048,
) -> Any:
    """A randomly initialised LlamaForCausalLM over `tokenizer`'s vocabulary.

    `vocab_padding` adds output rows past the tokenizer (as Llama/Falcon checkpoints pad theirs).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer) + vocab_padding,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # Larger output weights than the default init give peaked, clearly different distributions.
        model.lm_head.weight.normal_(0.0, 2.0 / hidden_size**0.5)
    return model.eval()


def save_model(model: Any, tokenizer: Any, folder: str | Path) -> Path:
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_family(
    folder: str | Path,
    *,
    small_hidden: int = 32,
    small_layers: int = 2,
    large_hidden: int = 64,
    large_layers: int = 4,
    seed: int = 0,
) -> dict[str, Path]:
    """Save small/large pre-trained and fine-tuned tiny models; returns role -> folder."""
    tokenizer = tiny_tokenizer()
    sizes = {"small": (small_hidden, small_layers), "large": (large_hidden, large_layers)}
    paths = {}
    for offset, (role, size) in enumerate(
        [("small_base", "small"), ("small_ft", "small"), ("large_base", "large"), ("large_ft", "large")]
    ):
        hidden, layers = sizes[size]
        model = tiny_llama(tokenizer, hidden_size=hidden, num_layers=layers, seed=seed + offset)
        paths[role] = save_model(model, tokenizer, Path(folder) / role)
    return paths
