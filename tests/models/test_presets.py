"""Presets: the four configurations of every family, presets in specs and lm-eval model_args, bad names."""

from __future__ import annotations

import pytest

from eft_eval.cli import main
from eft_eval.errors import EFTEvalError
from eft_eval.lm_eval._args import parse_model_spec, split_model_args
from eft_eval.models._presets import FAMILIES, preset_names, resolve_preset
from eft_eval.models._spec import parse_spec


@pytest.mark.parametrize("family_name", sorted(FAMILIES))
def test_four_configurations_combine_the_right_models(family_name: str) -> None:
    family = FAMILIES[family_name]
    small_ft = parse_spec(f"preset={family_name}:small-ft")
    large_ft = parse_spec(f"preset={family_name}:large-ft")
    up = parse_spec(f"preset={family_name}:up")
    down = parse_spec(f"preset={family_name}:down")
    assert small_ft.is_plain and small_ft.base.model == family.small_ft
    assert large_ft.is_plain and large_ft.base.model == family.large_ft
    # Up-scaling: large pre-trained knowledge, small fine-tuning delta.
    assert (up.base.model, up.deltas[0].ft.model, up.deltas[0].ref.model) == (
        family.large_base, family.small_ft, family.small_base)
    # Down-scaling: small pre-trained knowledge, large fine-tuning delta against its own base.
    assert (down.base.model, down.deltas[0].ft.model, down.deltas[0].ref.model) == (
        family.small_base, family.large_ft, family.large_ref or family.large_base)
    assert up.base.format == "plain" and up.deltas[0].ref.format == "plain"
    assert len(up.deltas) == len(down.deltas) == 1


def test_paper_families_and_small_modern_ones_are_there() -> None:
    assert {"llama1", "llama2", "falcon", "smollm2", "qwen2.5"} <= set(FAMILIES)
    assert parse_spec("preset=llama1:down").deltas[0].ref.model == "huggyllama/llama-30b"  # Vicuna-33B's base
    assert parse_spec("preset=llama2:up").base.model == "meta-llama/Llama-2-70b-hf"
    assert len(preset_names()) == 4 * len(FAMILIES)


def test_spelling_variants_and_extra_settings() -> None:
    assert resolve_preset("llama2-up") == resolve_preset("llama2:up") == resolve_preset("LLAMA2/up")
    spec = parse_spec("preset=qwen2.5:up,beta=1.5,dtype=bf16,top_p_weights=0.9")
    assert spec.beta == 1.5 and spec.top_p_weights == 0.9
    assert {component.dtype for _, component in spec.components()} == {"bf16"}


def test_preset_in_lm_eval_model_args() -> None:
    spec_text, options = split_model_args("preset=smollm2:down,batch_size=4,device=cpu")
    spec = parse_model_spec(spec_text, {})
    assert options == {"batch_size": "4"}
    assert spec.base.model == "HuggingFaceTB/SmolLM2-135M" and spec.deltas[0].ft.model.endswith("360M-Instruct")
    assert parse_model_spec(None, {"preset": "smollm2:up"}) == parse_spec("preset=smollm2:up")


def test_unknown_preset_lists_the_available_ones() -> None:
    with pytest.raises(EFTEvalError,
                       match=r"unknown preset 'llama3:up'; available presets: llama1:small-ft, .*qwen2.5:down"):
        parse_spec("preset=llama3:up")
    with pytest.raises(EFTEvalError, match="unknown preset 'llama2:sideways'"):
        resolve_preset("llama2:sideways")


def test_preset_and_model_keys_together_are_refused() -> None:
    with pytest.raises(EFTEvalError, match="preset given together with model key"):
        parse_spec("preset=llama2:up,base=gpt2")


def test_run_with_unknown_preset_fails_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "demo", "--preset", "nope:up", "--output", "unused"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("eft-eval: error: unknown preset 'nope:up'") and "smollm2:up" in error
    assert error.count("\n") == 1


def test_run_overrides_dtype_and_device_of_every_component_of_a_preset() -> None:
    from eft_eval.pipeline._run import RunConfig, resolve_spec

    spec = resolve_spec(RunConfig(task="demo", preset="llama2:down", dtype="bf16", device="cuda:1"))
    assert {(c.dtype, c.device) for _, c in spec.components()} == {("bf16", "cuda:1")}
    assert spec.deltas[0].ft.model == "meta-llama/Llama-2-70b-chat-hf"
