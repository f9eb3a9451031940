"""A tiny local model that answers every chat prompt with one fixed text: a scripted judge model.

`build_chain_model(folder, answer)` saves a llama whose weights make it a deterministic bigram chain,
so greedy decoding after any chat prompt writes exactly `answer` (a judge's "Reason: ... Score: 2").
The tokenizer is a small byte-level BPE trained in-process (no downloads, milliseconds).
`save_as_gguf` writes the same model as a GGUF file, for llama.cpp-style local judges.
"""

from __future__ import annotations

from pathlib import Path

_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_CORPUS = (
    "Reason: Looks accurate overall. Score: 2\nScore: None\nThe response is helpful and harmless. "
    "Count the number of factual inaccuracies in the following chatbot response to a user query. "
    "0 1 2 3 4 5 6 7 8 9 10 100 None\n"
)


def build_chain_model(folder: Path, answer: str) -> Path:
    """Save a tiny llama + tokenizer to `folder` that answers every chat prompt with `answer`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([_CORPUS * 20, answer * 20], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = _CHAT_TEMPLATE

    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True,
                                           tokenize=False)
    start = tokenizer(prompt, add_special_tokens=False)["input_ids"][-1]
    chain = [start, *tokenizer(answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    assert len(set(chain)) == len(chain), f"answer tokens must not repeat for a bigram chain: {chain}"

    hidden = 32
    assert len(chain) <= hidden
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # All blocks add zero to the residual stream, so the last hidden state is the (normalized)
        # embedding of the last token; the head maps each chain token's direction to its successor.
        for name, parameter in model.named_parameters():
            parameter.fill_(1.0 if "norm" in name else 0.0)
        for position, token in enumerate(chain[:-1]):
            model.model.embed_tokens.weight[token, position] = 1.0
            model.lm_head.weight[chain[position + 1], position] = 10.0
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_as_gguf(model_dir: Path, gguf_path: Path) -> Path:
    """Write a `build_chain_model` folder as a (float32) GGUF file, as llama.cpp names things."""
    import json

    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = model.config
    writer = gguf.GGUFWriter(str(gguf_path), "llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(config.vocab_size)

    saved = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = [""] * len(tokenizer)
    for token, index in saved["model"]["vocab"].items():
        tokens[index] = token
    specials = {added["content"] for added in saved["added_tokens"]}
    for added in saved["added_tokens"]:
        tokens[added["id"]] = added["content"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in saved["model"]["merges"]])
    writer.add_token_types([3 if token in specials else 1 for token in tokens])  # 3: control, 1: normal
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    parts = [("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm"), ("self_attn.q_proj", "attn_q"),
             ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
             ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")]
    for layer in range(config.num_hidden_layers):
        for ours, theirs in parts:
            names[f"model.layers.{layer}.{ours}.weight"] = f"blk.{layer}.{theirs}.weight"
    # (llama.cpp permutes q/k rows for its rope layout; these are all zero, so no permutation is needed.)
    for name, tensor in model.state_dict().items():
        writer.add_tensor(names[name], tensor.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return gguf_path


__all__ = ["build_chain_model", "save_as_gguf"]
