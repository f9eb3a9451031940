"""EFTModel on tiny llama models: composition vs brute force, cache, batching, seeds, tokenizers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from eft_eval import EFTModel
from eft_eval.errors import EFTEvalError
from eft_eval.models._decoding import ComponentStream, decode
from eft_eval.models._sampling import SamplingConfig, prompt_key
from eft_eval.testing import save_model, tiny_llama, tiny_tokenizer

PROMPTS = ["Why is the sky blue?", "Hi", "How do I bake bread? Explain like I'm five, please."]


def upscaled(family: dict[str, Path], extra: str = "") -> str:
    return f"base={family['large_base']},ft={family['small_ft']},ref={family['small_base']}{extra}"


def full_forward_logprobs(model, ids: list[int]) -> torch.Tensor:
    """Brute force: one uncached forward pass over the whole sequence, no padding."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return torch.log_softmax(logits.float(), dim=-1)


def record_composed(model: EFTModel, prompt: str, config: SamplingConfig):
    """Run the cached decoder on one prompt and keep every composed distribution it sampled from."""
    seen: list[torch.Tensor] = []

    def compose(logprobs, rows=None, /):  # a StepComposer: `rows` are the live batch rows
        out = model.compose(logprobs, rows)
        seen.append(out[0].clone())
        return out

    ids = model.encode([prompt])
    streams = [ComponentStream(c.model, rows, model.pad_token_id, model.vocab_size)
               for c, rows in zip(model.forward_components, ids)]
    [generation] = decode(streams, compose, config, [prompt_key(prompt)], set(), model.detokenize)
    return generation, seen, ids


def test_cached_composition_equals_three_separate_full_forward_passes(tiny_family) -> None:
    model = EFTModel.from_spec(upscaled(tiny_family, ",beta=1.5"))
    generation, seen, ids = record_composed(model, PROMPTS[0], SamplingConfig(max_new_tokens=12))
    assert len(generation.token_ids) == 12 and len(seen) == 12
    per_role = {}
    for role in ("base", "ft", "ref"):
        component = model.component_for(role)
        prompt_ids = ids[model.forward_components.index(component)][0]
        full = full_forward_logprobs(component.model, prompt_ids + generation.token_ids)
        per_role[role] = full[len(prompt_ids) - 1: len(prompt_ids) - 1 + 12]
    brute = torch.log_softmax(per_role["base"] + 1.5 * (per_role["ft"] - per_role["ref"]), dim=-1)
    assert torch.allclose(torch.stack(seen), brute, atol=1e-4)
    # The components really render differently: the chat prompt is not the plain prompt.
    assert (ids[model.forward_components.index(model.component_for("ft"))][0]
            != ids[model.forward_components.index(model.component_for("base"))][0])


def test_score_matches_generation_time_distributions(tiny_family) -> None:
    model = EFTModel.from_spec(upscaled(tiny_family))
    generation, seen, _ = record_composed(model, PROMPTS[2], SamplingConfig(max_new_tokens=8))
    [score] = model.score([PROMPTS[2]], [generation.token_ids])
    picked = [float(dist[token]) for dist, token in zip(seen, generation.token_ids)]
    assert score.token_logprobs == pytest.approx(picked, abs=1e-4)
    assert score.is_greedy


def test_base_equal_ref_gives_the_fine_tuned_model(tiny_family) -> None:
    eft = EFTModel.from_spec(f"base={tiny_family['small_base']},ft={tiny_family['small_ft']},"
                             f"ref={tiny_family['small_base']}")
    alone = EFTModel.from_spec(f"base={tiny_family['small_ft']},base_format=chat")
    eft_out = eft.generate(PROMPTS, max_new_tokens=16)
    alone_out = alone.generate(PROMPTS, max_new_tokens=16)
    assert [g.token_ids for g in eft_out] == [g.token_ids for g in alone_out]
    assert [g.text for g in eft_out] == [g.text for g in alone_out]
    # base and ref are the same weights with the same format: loaded once, one forward pass.
    assert len(eft.forward_components) == 2


def test_beta_zero_gives_the_base_model(tiny_family) -> None:
    eft = EFTModel.from_spec(upscaled(tiny_family, ",beta=0"))
    base = EFTModel.from_spec(f"base={tiny_family['large_base']},base_format=plain")
    _, eft_seen, _ = record_composed(eft, PROMPTS[1], SamplingConfig(max_new_tokens=6))
    _, base_seen, _ = record_composed(base, PROMPTS[1], SamplingConfig(max_new_tokens=6))
    assert torch.allclose(torch.stack(eft_seen), torch.stack(base_seen), atol=1e-5)


def test_alpha_one_gives_only_the_first_delta(tiny_family) -> None:
    two = EFTModel.from_spec(upscaled(tiny_family, f",ft2={tiny_family['large_ft']},alpha=1"))
    one = EFTModel.from_spec(upscaled(tiny_family))
    assert [d.weight for d in two.spec.deltas] == [1.0, 0.0]
    _, two_seen, _ = record_composed(two, PROMPTS[0], SamplingConfig(max_new_tokens=6))
    _, one_seen, _ = record_composed(one, PROMPTS[0], SamplingConfig(max_new_tokens=6))
    assert torch.allclose(torch.stack(two_seen), torch.stack(one_seen), atol=1e-5)
    half = EFTModel.from_spec(upscaled(tiny_family, f",ft2={tiny_family['large_ft']},alpha=0.5"))
    _, half_seen, _ = record_composed(half, PROMPTS[0], SamplingConfig(max_new_tokens=1))
    assert not torch.allclose(half_seen[0], one_seen[0], atol=1e-3)


def test_batched_equals_one_by_one_greedy(tiny_family) -> None:
    model = EFTModel.from_spec(upscaled(tiny_family))
    batched = model.generate(PROMPTS, max_new_tokens=20, batch_size=3)
    single = [model.generate([p], max_new_tokens=20)[0] for p in PROMPTS]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]


def test_repeated_prompts_are_prefilled_once_and_decode_as_their_first(tiny_family) -> None:
    model = EFTModel.from_spec(upscaled(tiny_family))
    component = model.forward_components[0]
    first, other = model.encode(PROMPTS[:2])[0]  # the first component's rendering of each prompt
    rows = [first, other, first, first]
    stream = ComponentStream(component.model, rows, model.pad_token_id, model.vocab_size)
    assert stream.distinct_rows == [0, 1] and stream.row_source == [0, 1, 0, 0]
    logprobs = stream.prefill()
    # The cache holds every row (copied from the one prefilled), and the log-probs are those of the
    # two distinct prompts prefilled alone, bit for bit.
    assert stream.cache.get_seq_length() == max(map(len, rows)) and stream.cache.layers[0].keys.shape[0] == 4
    alone = ComponentStream(component.model, rows[:2], model.pad_token_id, model.vocab_size).prefill()
    assert torch.equal(logprobs, alone[[0, 1, 0, 0]])
    # Same next token, same next log-probs: the copied rows decode as the row they were copied from.
    after = stream.advance(torch.tensor([5, 6, 5, 5]))
    assert torch.equal(after[0], after[2]) and torch.equal(after[0], after[3])
    # Greedy generation with repeated prompts equals generating each prompt once.
    repeated = model.generate([PROMPTS[0], PROMPTS[1], PROMPTS[0]], max_new_tokens=12, batch_size=3)
    once = model.generate(PROMPTS[:2], max_new_tokens=12, batch_size=2)
    assert [g.token_ids for g in repeated] == [once[0].token_ids, once[1].token_ids, once[0].token_ids]


def test_sampling_is_reproducible_and_independent_of_batch_mates(tiny_family) -> None:
    model = EFTModel.from_spec(upscaled(tiny_family))
    settings = {"max_new_tokens": 24, "do_sample": True, "temperature": 1.0, "top_p": 0.95}
    first = model.generate(PROMPTS, seed=7, **settings)
    again = model.generate(PROMPTS, seed=7, batch_size=2, **settings)
    alone = model.generate([PROMPTS[1]], seed=7, **settings)
    other_seed = model.generate(PROMPTS, seed=8, **settings)
    assert [g.token_ids for g in first] == [g.token_ids for g in again]
    assert first[1].token_ids == alone[0].token_ids
    assert [g.token_ids for g in first] != [g.token_ids for g in other_seed]
    greedy = model.generate(PROMPTS, max_new_tokens=24)
    assert [g.token_ids for g in first] != [g.token_ids for g in greedy]


def test_stop_strings_eos_and_length(tiny_family) -> None:
    model = EFTModel.from_spec(upscaled(tiny_family))
    [free] = model.generate([PROMPTS[0]], max_new_tokens=12)
    assert free.finish_reason == "length" and len(free.token_ids) == 12
    stop = free.text[3:6]
    [stopped] = model.generate([PROMPTS[0]], max_new_tokens=12, stop=[stop])
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.find(stop)]
    # Make the first greedy token an EOS of the fine-tuned model: generation ends at once.
    model.eos_token_ids = {free.token_ids[0]}
    [ended] = model.generate([PROMPTS[0]], max_new_tokens=12)
    assert ended.finish_reason == "eos" and ended.token_ids == [] and ended.text == ""


def test_padded_vocabulary_ids_are_never_sampled(tmp_path, tiny_family) -> None:
    tokenizer = tiny_tokenizer()
    vocab = len(tokenizer)
    padded = tiny_llama(tokenizer, vocab_padding=64, seed=3)
    with torch.no_grad():  # padded rows that would win every argmax if they were not cut off
        padded.lm_head.weight[vocab:] = 50 * padded.lm_head.weight[:64]
    folder = save_model(padded, tokenizer, tmp_path / "padded")
    model = EFTModel.from_spec(f"base={folder},ft={tiny_family['small_ft']},ref={tiny_family['small_base']}")
    assert model.vocab_size == vocab
    raw_ids = model.encode([PROMPTS[0]])[0][0]
    with torch.no_grad():
        raw_argmax = padded(input_ids=torch.tensor([raw_ids])).logits[0, -1].argmax().item()
    assert raw_argmax >= vocab  # the unfiltered model would pick a padded id
    out = model.generate(PROMPTS, max_new_tokens=10, do_sample=True, seed=1)
    assert all(token < vocab for g in out for token in g.token_ids)


def test_mismatched_tokenizers_raise_a_clear_error(tmp_path, tiny_family) -> None:
    other_tokenizer = tiny_tokenizer(vocab_size=300)
    other = save_model(tiny_llama(other_tokenizer), other_tokenizer, tmp_path / "other")
    with pytest.raises(EFTEvalError) as error:
        EFTModel.from_spec(f"base={other},ft={tiny_family['small_ft']},ref={tiny_family['small_base']}")
    message = str(error.value)
    assert "tokenizers differ" in message and str(other) in message and str(tiny_family["small_ft"]) in message


def test_unknown_model_path_names_it(tiny_family) -> None:
    with pytest.raises(EFTEvalError, match="no/such/model"):
        EFTModel.from_spec(f"base=no/such/model,ft={tiny_family['small_ft']},ref={tiny_family['small_base']}")


def test_weights_named_twice_are_loaded_once(tiny_family) -> None:
    from eft_eval.models._components import ModelCache

    cache = ModelCache()
    spec = (f"base={tiny_family['small_ft']},base_format=plain,ft={tiny_family['small_ft']},"
            f"ref={tiny_family['small_base']},ft2={tiny_family['large_ft']},alpha=0.5")
    model = EFTModel.from_spec(spec, model_cache=cache)
    assert len(cache) == 3  # small_ft (as base and ft), small_base (shared ref), large_ft
    assert model.component_for("base").model is model.component_for("ft").model
    assert model.component_for("base") is not model.component_for("ft")  # two prompt formats
    assert model.component_for("ref") is model.component_for("ref2")


def test_system_prompt_and_plain_template_rendering(tiny_family) -> None:
    model = EFTModel.from_spec(upscaled(tiny_family, ",ft_system_prompt=Be brief."))
    chat = model.component_for("ft").render("Hello?")
    assert chat.startswith("<s><|system|>\nBe brief.</s>") and chat.endswith("<|assistant|>\n")
    assert model.component_for("base").render("Hello?") == "\n\nHuman: Hello?\n\nAssistant:"
    conversation = [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"},
                    {"role": "user", "content": "C"}]
    assert model.component_for("ref").render(conversation) == "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant:"
    custom = EFTModel.from_spec(upscaled(tiny_family, ",base_format=Q: {query}\nA:"))
    assert custom.component_for("base").render("x {y}") == "Q: x {y}\nA:"


def test_a_row_key_carries_its_seed_and_draws_what_seed_and_prompt_drew_before() -> None:
    import hashlib

    from eft_eval.models._sampling import seeded_key, uniform_at, uniform_for

    # The stream every stored sample was drawn from: blake2b of "seed|prompt key|step".
    before = (int.from_bytes(hashlib.blake2b(b"7|abc|3", digest_size=8).digest(), "little") >> 11) / float(1 << 53)
    assert uniform_at(seeded_key(7, "abc"), 3) == uniform_for(7, "abc", 3) == before
    assert uniform_at(seeded_key(8, "abc"), 3) != before
