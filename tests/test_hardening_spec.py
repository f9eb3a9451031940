"""Specs and lm-eval model_args that used to mean another model than the one written: roles
named twice, values typed by someone else's parser, sampling values that are not what they
look like, contexts longer than the model's. Each is one line naming the key, never a guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from eft_eval.errors import EFTEvalError
from eft_eval.models import parse_spec

SPEC = "base=B,ft=F,ref=R"


# -- one role, one key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("model=M", "'base' and 'model' both set base: give one of them"),
        ("ft1=G", "'ft' and 'ft1' both set ft: give one of them"),
        ("ref1=S", "'ref' and 'ref1' both set ref: give one of them"),
        ("ft01=G", "'ft01' is not a valid key: deltas are numbered ft, ft2, ft3, ... (no 0, no leading zeros)"),
        ("ft0=G", "'ft0' is not a valid key"),
        ("ft02=G", "'ft02' is not a valid key"),
        ("ft3=G", "'ft3' is given without ft2: deltas are numbered ft, ft2, ft3, ... without gaps"),
        ("ft2=G,ft4=H", "'ft4' is given without ft3"),
        ("ft_dtype=bf16,ft1_dtype=fp16", "'ft_dtype' and 'ft1_dtype' both set ft_dtype"),
        ("base_format=plain,model_format=chat", "'base_format' and 'model_format' both set base_format"),
        ("w1=2,w01=3", "'w01' is not a valid key: weights are numbered w1, w2, w3"),
        ("w0=2", "'w0' is not a valid key"),
        ("base2=X", "'base2': the base model has no index"),
        ("model1=X", "'model1': the base model has no index"),
        ("ft2_dtype=bf16", "'ft2_dtype' is given without ft2=MODEL"),
        ("ref3_dtype=bf16", "'ref3_dtype' is given without ft3=MODEL"),
    ],
)
def test_a_role_named_twice_or_misnumbered_is_one_line(extra: str, message: str) -> None:
    with pytest.raises(EFTEvalError) as error:
        parse_spec(f"{SPEC},{extra}")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_ft2_without_ft_is_refused_not_made_the_first_delta() -> None:
    with pytest.raises(EFTEvalError, match="'ft2' is given without ft: deltas are numbered"):
        parse_spec("base=B,ft2=G,ref=R")


def test_aliases_alone_still_name_their_role() -> None:
    """`model=` and `ft1=`/`ref1=` on their own are spellings of base, ft and ref."""
    spec = parse_spec("model=B,ft1=F,ref1=R,ft2=G,w1=0.3,w2=0.7,model_format=plain")
    assert spec.to_string() == "base=B,ft=F,ref=R,ft2=G,ref2=R,w1=0.3,w2=0.7"
    assert [d.ft.model for d in spec.deltas] == ["F", "G"]


def test_a_setting_of_a_shared_ref_applies_to_that_deltas_copy() -> None:
    """`ref2` left out is `ref`'s model; `ref2_dtype` sets delta 2's copy (it was dropped)."""
    spec = parse_spec("base=B,ft=F,ft2=G,ref=R,ref_format=plain,ref2_dtype=fp16")
    assert [(d.ref.model, d.ref.dtype) for d in spec.deltas] == [("R", "auto"), ("R", "fp16")]
    assert parse_spec(spec.to_string()) == spec


def test_alpha_applies_to_the_deltas_as_written() -> None:
    spec = parse_spec("base=B,ft=HELPFUL,ft2=HARMLESS,ref=R,alpha=0.8")
    assert [(d.ft.model, d.weight) for d in spec.deltas] == [("HELPFUL", 0.8), ("HARMLESS", pytest.approx(0.2))]


def test_the_same_checks_hold_for_dicts() -> None:
    with pytest.raises(EFTEvalError, match="'base' and 'model' both set base"):
        parse_spec({"base": "B", "model": "M"})


# -- spec YAML: values typed by YAML, two forms of deltas ---------------------------------------------


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("base: B\nft: F\nref: R\nft_system_prompt: [a, b]\n", "component ft: system_prompt=['a', 'b'] must be text"),
        ("base: {model: B, system_prompt: [a, b]}\n", "component base: system_prompt=['a', 'b'] must be text"),
        ("base: B\nft: F\nref: R\nft_system_prompt: no\n", "component ft: system_prompt=False must be text"),
        ("base: B\nft: F\nref: R\nft_format: {query: x}\n", "component ft: format={'query': 'x'} must be text"),
        ("base: B\nbase_revision: 2024\n", "component base: revision=2024 must be text (in YAML, put it in quotes)"),
        ("base: 1.5\n", "component base: model must be a non-empty string, got 1.5 (in YAML, put it in quotes)"),
        ("base: B\nname: [x]\n", "name=['x'] must be text"),
        ("base: B\nft: F\nref: R\nbeta: yes\n", "beta=True is not a number"),
        ("base: B\nft: F\nref: R\nw1: true\n", "w1=True is not a number"),
        ("base: B\nft: F\nref: R\ntop_p_weights: 0\n", "top_p_weights=0 is out of range (expected a finite number > 0"),
        ("base: {model: B, dtype: bf16}\nbase_dtype: fp16\n", "base.dtype and base_dtype are both given: give one"),
    ],
)
def test_yaml_values_of_the_wrong_type_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(EFTEvalError) as error:
        parse_spec(_yaml(tmp_path, body))
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("extra", ["ft: F2\n", "ref: R2\n", "alpha: 0.7\n", "w1: 2\n", "ft_format: plain\n"])
def test_deltas_list_and_delta_keys_are_one_form_or_the_other(tmp_path: Path, extra: str) -> None:
    body = "base: B\ndeltas:\n  - {ft: F, ref: R}\n  - {ft: G, ref: R}\n" + extra
    with pytest.raises(EFTEvalError, match="'deltas' given together with '.*': give the deltas either as"):
        parse_spec(_yaml(tmp_path, body))


def test_a_deltas_list_alone_still_works(tmp_path: Path) -> None:
    spec = parse_spec(_yaml(tmp_path, "base: B\ndeltas:\n  - {ft: F, ref: R, weight: 0.5}\n"))
    assert [(d.ft.model, d.ref.model, d.weight) for d in spec.deltas] == [("F", "R", 0.5)]


def test_quoted_yaml_words_stay_text(tmp_path: Path) -> None:
    spec = parse_spec(_yaml(tmp_path, "base: '123'\nft: F\nref: R\nft_system_prompt: 'no'\n"))
    assert (spec.base.model, spec.deltas[0].ft.system_prompt) == ("123", "no")


def test_an_equals_sign_inside_a_value_is_part_of_it() -> None:
    spec = parse_spec("base=B,ft=F,ref=R,ft_system_prompt=x=1")
    assert spec.deltas[0].ft.system_prompt == "x=1"
    assert parse_spec(spec.to_string()) == spec
