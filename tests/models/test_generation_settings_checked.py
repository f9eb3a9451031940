"""The model library refuses values that are not what they look like, with one line naming them:
sampling settings, batch sizes, devices, prompts past a component's context, and compositions
whose distribution is not finite (weights too large for float32)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from eft_eval import EFTModel
from eft_eval.errors import EFTEvalError
from eft_eval.models import ModelCache
from eft_eval.models._decoding import (
    NOT_FINITE,
    ComponentStream,
    decode,
    flag_not_finite,
)
from eft_eval.models._sampling import SamplingConfig, filter_for_sampling, prompt_key
from eft_eval.models._speculative import SpeculativeStats
from eft_eval.testing import save_model, tiny_llama, tiny_tokenizer


def upscaled(family: dict[str, Path], extra: str = "") -> str:
    return f"base={family['large_base']},ft={family['small_ft']},ref={family['small_base']}{extra}"


@pytest.fixture(scope="module")
def model(tiny_family) -> EFTModel:
    return EFTModel.from_spec(upscaled(tiny_family))


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# -- sampling values ------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "named"), [
    ({"do_sample": True, "temperature": float("nan")}, "temperature=nan"),
    ({"do_sample": True, "temperature": float("inf")}, "temperature=inf"),
    ({"do_sample": True, "temperature": -1.0}, "temperature=-1.0"),
    ({"do_sample": True, "temperature": 1e-45}, "temperature=1e-45"),
    ({"do_sample": True, "top_p": float("nan")}, "top_p=nan"),
    ({"do_sample": True, "top_p": 1.5}, "top_p=1.5"),
    ({"do_sample": True, "top_p": 0.0}, "top_p=0.0"),
    ({"do_sample": True, "top_k": -3}, "top_k=-3"),
    ({"do_sample": True, "top_k": 2.5}, "top_k=2.5"),
    ({"max_new_tokens": 0}, "max_new_tokens=0"),
    ({"max_new_tokens": -5}, "max_new_tokens=-5"),
    ({"do_sample": True, "seed": float("nan")}, "seed=nan"),
    ({"do_sample": "false"}, "do_sample='false'"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"batch_size": -1}, "batch_size=-1"),
    ({"batch_size": True}, "batch_size=True"),
])
def test_generate_refuses_sampling_values_in_one_line(model, settings, named) -> None:
    with pytest.raises(EFTEvalError) as error:
        model.generate(["Hi"], **{"max_new_tokens": 3, **settings})
    assert named in one_line(error)


def test_a_bad_setting_is_still_a_value_error_for_callers_that_answer_those() -> None:
    # The server answers a ValueError from SamplingConfig with a 400; lm-eval's backend names its gen_kwargs.
    with pytest.raises(ValueError, match=r"top_p=1\.5 is out of range"):
        SamplingConfig(top_p=1.5)


def test_temperature_zero_with_sampling_is_greedy(model) -> None:
    greedy = model.generate(["Hi", "Why is the sky blue?"], max_new_tokens=6)
    zero = model.generate(["Hi", "Why is the sky blue?"], max_new_tokens=6, do_sample=True, temperature=0)
    assert [g.token_ids for g in zero] == [g.token_ids for g in greedy]


def test_a_tiny_temperature_samples_the_argmax_instead_of_nan() -> None:
    logprobs = torch.log_softmax(torch.tensor([[2.0, 1.0, 0.5, -3.0]]), dim=-1)
    filtered = filter_for_sampling(logprobs, temperature=1e-40)
    assert not torch.isnan(filtered).any()
    assert filtered[0, 0] == 0 and torch.isinf(filtered[0, 1:]).all()


def test_settings_given_as_text_or_whole_floats_are_read_as_numbers() -> None:
    config = SamplingConfig(max_new_tokens=4.0, top_k="3", seed=2**70, do_sample=True, temperature="0.7")
    assert (config.max_new_tokens, config.top_k, config.seed, config.temperature) == (4, 3, 2**70, 0.7)


# -- distributions that are not finite ------------------------------------------------------------


@pytest.mark.parametrize("extra", [",beta=1e308", ",w1=1e300"])
@pytest.mark.parametrize("how", ["greedy", "sampled", "speculative exact", "speculative rejection", "score"])
def test_absurd_weights_stop_the_run_naming_the_spec(tiny_family, extra, how) -> None:
    absurd = EFTModel.from_spec(upscaled(tiny_family, extra))
    with pytest.raises(EFTEvalError) as error:
        if how == "score":
            absurd.score(["Hi"], ["Hello there"])
        else:
            speculative = {"speculative_block": 3, "speculative_mode": how.split()[1]} if "speculative" in how else {}
            absurd.generate(["Hi", "Why is the sky blue?"], max_new_tokens=5, do_sample=how != "greedy", **speculative)
    message = one_line(error)
    assert "not finite" in message and extra.split("=")[0].lstrip(",") in message


def test_only_rows_that_are_not_distributions_are_flagged() -> None:
    inf, nan = float("inf"), float("nan")
    rows = torch.tensor([
        [-0.1, -inf, -2.5],  # filtered or padded ids are -inf: a distribution
        [nan, -0.1, -2.0],
        [-inf, -inf, -inf],
        [inf, -0.1, -2.0],
    ])
    flagged = flag_not_finite(torch.tensor([0, 1, 1, 0]), rows)
    assert flagged.tolist() == [0, NOT_FINITE, NOT_FINITE, NOT_FINITE]


def test_decoding_stops_at_the_first_step_that_is_not_finite(model) -> None:
    steps: list[int] = []

    def compose(logprobs, rows=None, /):
        out = model.compose(logprobs, rows)
        steps.append(len(steps))
        return out if len(steps) < 4 else out.fill_(float("nan"))

    ids = model.encode(["Hi"])
    streams = [ComponentStream(c.model, r, model.pad_token_id, model.vocab_size)
               for c, r in zip(model.forward_components, ids)]
    config = SamplingConfig(max_new_tokens=20)
    with pytest.raises(EFTEvalError, match="not finite at step 3"):
        decode(streams, compose, config, [prompt_key("Hi")], set(), model.detokenize)
    assert len(steps) == 4


def test_large_but_finite_weights_still_generate(tiny_family) -> None:
    # 1e30 * (log p_ft - log p_ref) is finite in float32: a peaked distribution, not an error.
    strong = EFTModel.from_spec(upscaled(tiny_family, ",beta=1e30"))
    [generation] = strong.generate(["Hi"], max_new_tokens=4)
    assert len(generation.token_ids) >= 1


# -- devices --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "expected"), [
    (",device=nonsense", "component base: device='nonsense' is not a device: use cpu, cuda, cuda:N, mps or auto"),
    (",device=meta", "component base: device='meta' holds no weights"),
    (",device=0", "component base: device='0' is ambiguous: write cuda:0 for that GPU, or cpu"),
    (",ft_device=bogus:1", "component ft: device='bogus:1' is not a device"),
])
def test_devices_are_checked_before_any_weights_load(tiny_family, extra, expected) -> None:
    cache = ModelCache()
    with pytest.raises(EFTEvalError) as error:
        EFTModel.from_spec(upscaled(tiny_family, extra), model_cache=cache)
    assert expected in one_line(error)
    assert len(cache) == 0


def test_a_device_override_is_checked_too(tiny_family) -> None:
    with pytest.raises(EFTEvalError, match="component base: device='nonsense' is not a device"):
        EFTModel.from_spec(upscaled(tiny_family), device="nonsense")


def test_an_integer_device_in_a_yaml_spec_is_refused(tmp_path, tiny_family) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"base: {tiny_family['large_base']}\nft: {tiny_family['small_ft']}\n"
                    f"ref: {tiny_family['small_base']}\ndevice: 0\n")
    with pytest.raises(EFTEvalError, match=r"device='0' is ambiguous: write cuda:0"):
        EFTModel.from_spec(spec)


def test_cuda_on_a_build_without_cuda(monkeypatch, tiny_family) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    with pytest.raises(EFTEvalError) as error:
        EFTModel.from_spec(upscaled(tiny_family, ",ft_device=cuda"))
    assert f"component ft: device='cuda': cuda is not available in this torch build (torch {torch.__version__}); " \
           "use device=cpu" == one_line(error)


def test_a_gpu_index_past_the_gpus_there_are(monkeypatch, tiny_family) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(EFTEvalError) as error:
        EFTModel.from_spec(upscaled(tiny_family, ",ft_device=cuda:7"))
    assert "component ft: device='cuda:7': cuda:7 does not exist: 1 GPU(s) (available: cpu, cuda:0" in one_line(error)


def test_no_visible_gpu_on_a_cuda_build(monkeypatch, tiny_family) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EFTEvalError, match=r"device='cuda:0': no GPU is visible"):
        EFTModel.from_spec(upscaled(tiny_family, ",device=cuda:0"))


def test_cpu_and_auto_load(tiny_family) -> None:
    for device in ("cpu", "cpu:0", "auto"):
        loaded = EFTModel.from_spec(upscaled(tiny_family), device=device)
        assert loaded.generate(["Hi"], max_new_tokens=2)


# -- context length -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_context(tmp_path_factory) -> dict[str, Path]:
    """A RoPE (llama) and an absolute-position (GPT-2) model of 32 positions over the tiny tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = tiny_tokenizer()
    folder = tmp_path_factory.mktemp("short_context")

    def gpt2(seed: int) -> GPT2LMHeadModel:
        torch.manual_seed(seed)
        config = GPT2Config(vocab_size=len(tokenizer), n_positions=32, n_embd=32, n_layer=2, n_head=4,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        return GPT2LMHeadModel(config).eval()

    return {
        "llama": save_model(tiny_llama(tokenizer, max_positions=32), tokenizer, folder / "llama"),
        "gpt2": save_model(gpt2(0), tokenizer, folder / "gpt2"),
        "gpt2_ft": save_model(gpt2(1), tokenizer, folder / "gpt2_ft"),
    }


def prompt_of(model: EFTModel, tokens: int) -> tuple[str, int]:
    """A query whose rendering is at least `tokens` tokens long, and its length."""
    for words in range(1, 200):
        text = " ".join(["bread"] * words)
        length = len(model.encode([text])[0][0])
        if length >= tokens:
            return text, length
    raise AssertionError("no prompt of that length")


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_a_prompt_past_the_context_is_refused_naming_component_lengths_and_index(short_context, kind) -> None:
    plain = EFTModel.from_spec(f"base={short_context[kind]},base_format=plain")
    (fits, fits_length), (too_long, too_long_length) = prompt_of(plain, 18), prompt_of(plain, 29)
    assert fits_length <= 24 and too_long_length <= 31
    with pytest.raises(EFTEvalError) as error:
        plain.generate([fits, too_long], max_new_tokens=4)
    assert one_line(error) == (f"prompt 1: base ({short_context[kind]}) has a context of 32 tokens; the prompt "
                               f"({too_long_length} tokens) plus max_new_tokens (4) is over it: shorten the prompt "
                               "or lower max_new_tokens")
    room = 32 - fits_length
    with pytest.raises(EFTEvalError, match=f"prompt 0: .* plus max_new_tokens \\({room + 1}\\)"):
        plain.generate([fits], max_new_tokens=room + 1)
    [generation] = plain.generate([fits], max_new_tokens=room)  # exactly the context: as the server allows
    assert generation.token_ids
    over = 33 - too_long_length
    with pytest.raises(EFTEvalError,
                       match=rf"the prompt \({too_long_length} tokens\) plus the continuation \({over}\) is over"):
        plain.score([too_long], [[5] * over])
    assert plain.score([too_long], [[5] * (over - 1)])


def test_a_huge_max_new_tokens_is_refused_before_decoding(model) -> None:
    with pytest.raises(EFTEvalError, match=r"plus max_new_tokens \(1000000000000\) is over it"):
        model.generate(["Hi"], max_new_tokens=10**12)


def test_speculative_rows_never_feed_positions_past_the_context(short_context) -> None:
    # Rows drift apart (one accepts more drafts than another); a row ahead must not draft past its
    # last token, or an absolute-position model indexes past its position table.
    base, ft = short_context["gpt2"], short_context["gpt2_ft"]
    eft = EFTModel.from_spec(f"base={base},ft={ft},ref={base},ft_format=plain,ref_format=plain,beta=0.5")
    prompts = [f"{word} bread" for word in ("Paris", "light", "water", "salt", "fox", "dog")]
    lengths = {len(ids) for ids in eft.encode(prompts)[0]}
    budget = 32 - max(lengths)
    stats = SpeculativeStats()
    for mode in ("exact", "rejection"):
        plain = eft.generate(prompts, max_new_tokens=budget, do_sample=True, seed=1)
        fast = eft.generate_ids(eft.encode(prompts), SamplingConfig(max_new_tokens=budget, do_sample=True, seed=1),
                                [prompt_key(p) for p in prompts], speculative_block=8, speculative_mode=mode,
                                speculative_stats=stats)
        if mode == "exact":
            assert [g.token_ids for g in fast] == [g.token_ids for g in plain]
    assert stats.uneven_rounds > 0


# -- lists that are one value, and strings that are empty ------------------------------------------


def test_one_text_where_a_list_of_prompts_is_expected_is_refused(model) -> None:
    with pytest.raises(EFTEvalError) as error:
        model.generate("Why is the sky blue?", max_new_tokens=2)
    assert one_line(error) == "prompts: expected a list, got str 'Why is the sky blue?': pass a list, " \
                              "e.g. ['Why is the sky blue?']"
    with pytest.raises(EFTEvalError, match="prompts: expected a list, got str 'Hi'"):
        model.score("Hi", ["x", "y"])
    with pytest.raises(EFTEvalError, match="continuations: expected a list, got str 'Hello'"):
        model.score(["Hi"], "Hello")


def test_score_wants_one_continuation_per_prompt(model) -> None:
    with pytest.raises(EFTEvalError, match=r"score: 2 prompt\(s\) but 1 continuation\(s\)"):
        model.score(["Hi", "Ho"], ["x"])


def test_one_stop_string_given_alone_is_one_stop_string(model) -> None:
    [greedy] = model.generate(["Hi"], max_new_tokens=8)
    first_character = greedy.text[0]
    [stopped] = model.generate(["Hi"], max_new_tokens=8, stop=first_character + "\x00never")
    assert stopped.token_ids == greedy.token_ids and stopped.finish_reason == greedy.finish_reason
    [stopped] = model.generate(["Hi"], max_new_tokens=8, stop=first_character)
    assert (stopped.text, stopped.finish_reason) == ("", "stop")


def test_an_empty_stop_string_is_refused(model) -> None:
    with pytest.raises(EFTEvalError, match=r"stop='': a stop string must be non-empty text"):
        model.generate(["Hi"], max_new_tokens=4, stop=["", "###"])


def test_row_weights_that_are_not_finite_are_refused(model) -> None:
    config = SamplingConfig(max_new_tokens=2)
    with pytest.raises(EFTEvalError, match=r"row_weights: row 1 holds a weight that is not finite: \[nan\]"):
        model.generate_ids(model.encode(["Hi", "Ho"]), config, ["a", "b"], row_weights=[[1.0], [float("nan")]])


@pytest.mark.parametrize("token", [100000, -1, True])
def test_score_refuses_token_ids_outside_the_vocabulary(model, token) -> None:
    with pytest.raises(EFTEvalError) as error:
        model.score(["Hi"], [[5, token]])
    assert one_line(error) == (f"continuation 0: token id {token!r} is not an id of this model's vocabulary "
                               f"(whole numbers 0 to {model.vocab_size - 1})")
