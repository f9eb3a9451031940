"""Spec parsing (compact string, YAML, dict) and its one-line errors, also through the CLI."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from eft_eval.errors import EFTEvalError
from eft_eval.models._spec import EFTSpec, parse_spec


def test_compact_string_upscaling_and_roundtrip() -> None:
    spec = parse_spec("base=L,ft=F,ref=S,beta=1.5,top_p_weights=0.9,dtype=bf16,ft_system_prompt=Be nice.")
    assert spec.base.model == "L" and spec.base.format == "plain" and spec.base.dtype == "bf16"
    [delta] = spec.deltas
    assert (delta.ft.model, delta.ft.format, delta.ft.system_prompt) == ("F", "chat", "Be nice.")
    assert (delta.ref.model, delta.ref.format, delta.weight) == ("S", "plain", 1.0)
    assert (spec.beta, spec.top_p_weights) == (1.5, 0.9)
    assert parse_spec(spec.to_string()) == spec


def test_reward_interpolation_shares_the_reference() -> None:
    spec = parse_spec("base=B,ft=HELPFUL,ft2=HARMLESS,ref=R,alpha=0.3")
    assert [(d.ft.model, d.ref.model, d.weight) for d in spec.deltas] == [("HELPFUL", "R", 0.3), ("HARMLESS", "R", 0.7)]
    explicit = parse_spec("base=B,ft=A,ref=R,ft2=C,ref2=R2,w1=2,w2=-1")
    assert [(d.ref.model, d.weight) for d in explicit.deltas] == [("R", 2.0), ("R2", -1.0)]


def test_plain_model_gguf_and_yaml(tmp_path) -> None:
    plain = parse_spec("some/model")
    assert plain.is_plain and plain.base.format == "auto"
    gguf = parse_spec("/models/smol/SmolLM2.Q4_1.gguf")
    assert (gguf.base.model, gguf.base.gguf_file) == ("/models/smol", "SmolLM2.Q4_1.gguf")
    path = tmp_path / "spec.yaml"
    path.write_text(
        "base: {model: L, dtype: fp16}\n"
        "deltas:\n  - {ft: F, ref: S, weight: 0.5}\n"
        "beta: 2\ndevice: cpu\n"
    )
    spec = parse_spec(path)
    assert isinstance(spec, EFTSpec) and spec.base.dtype == "fp16" and spec.deltas[0].weight == 0.5
    assert parse_spec({"base": "L", "ft": "F", "ref": "S"}).deltas[0].ft.model == "F"


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("base=B,ft=F", "ft=F has no reference model"),
        ("base=B,ft=F,ref=R,ft2=G,ref2", "'ref2'"),
        ("base=B,ft=F,ref=R,beta=strong", "beta='strong' is not a number"),
        ("base=B,ft=F,ref=R,w1=heavy", "w1='heavy' is not a number"),
        ("base=B,ft=F,ref=R,alpha=x", "alpha='x' is not a number"),
        ("base=B,ft=F,ref=R,gamma=1", "unknown key 'gamma'"),
        ("base=B,ft=F,ref=R,alpha=0.5", "alpha interpolates two deltas"),
        ("ft=F,ref=R", "no base model"),
        ("base=B,ft=F,ref=R,dtype=fp8", "dtype='fp8'"),
        ("base=B,ft=F,ref=R,top_p_weights=2", "top_p_weights=2"),
        ("base=B,base=C", "given twice"),
    ],
)
def test_malformed_specs_name_the_culprit(text: str, culprit: str) -> None:
    with pytest.raises(EFTEvalError, match=culprit.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(text)


def test_yaml_spec_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: L\ndeltas:\n  - {ft: F}\n")
    with pytest.raises(EFTEvalError, match=r"bad.yaml: deltas\[1\]: delta ft=F has no reference model"):
        parse_spec(bad)
    with pytest.raises(EFTEvalError, match="does not exist"):
        parse_spec(tmp_path / "missing.yaml")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eft_eval.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.slow
def test_cli_bad_input_is_one_line_naming_the_culprit(tmp_path, tiny_family) -> None:
    cases = {
        "base=B,ft=F,ref=R,beta=abc": "beta='abc' is not a number",
        "base=B,ft=F": "has no reference model",
        f"base={tmp_path}/nowhere,ft={tiny_family['small_ft']},ref={tiny_family['small_base']}": f"{tmp_path}/nowhere",
    }
    for spec, culprit in cases.items():
        result = run_cli("generate", "--model", spec, "--prompt", "Hi", "--max-new-tokens", "2")
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("eft-eval: error:") and culprit in lines[-1]
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_generate_prints_json_lines(tiny_family) -> None:
    import json

    spec = f"base={tiny_family['large_base']},ft={tiny_family['small_ft']},ref={tiny_family['small_base']}"
    result = run_cli("generate", "--model", spec, "--prompt", "Hi", "--prompt", "Why?", "--max-new-tokens", "5")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in records] == ["Hi", "Why?"]
    assert all(r["finish_reason"] in ("length", "eos") and r["model"] == spec for r in records)


def test_quoted_values_hold_commas_and_round_trip() -> None:
    fmt = "A chat, politely.\nUSER: {query} ASSISTANT:"
    spec = parse_spec('base=L,ft=F,ref=S,ft_format="A chat, politely.\\nUSER: {query} ASSISTANT:"')
    assert spec.deltas[0].ft.format == fmt
    text = spec.to_string()
    assert parse_spec(text) == spec
    vicuna = parse_spec("preset=llama1:up")
    assert "," in vicuna.deltas[0].ft.format and parse_spec(vicuna.to_string()) == vicuna
    with pytest.raises(EFTEvalError, match="not a valid quoted string"):
        parse_spec('base=L,ft=F,ref=S,ft_format="unterminated')


@pytest.mark.parametrize("word", ["false", "False", "FALSE", "0", "no", "No"])
def test_trust_remote_code_false_in_a_compact_spec_stays_off(word: str) -> None:
    """`bool("false")` is True: a compact `trust_remote_code=false` once turned remote code on."""
    spec = parse_spec(f"base=B,ft=F,ref=R,trust_remote_code={word}")
    assert [component.trust_remote_code for _, component in spec.components()] == [False, False, False]


@pytest.mark.parametrize("word", ["true", "True", "1", "yes", "YES"])
def test_trust_remote_code_true_words_turn_it_on_and_round_trip(word: str) -> None:
    spec = parse_spec(f"base=B,ft=F,ref=R,trust_remote_code={word}")
    assert all(component.trust_remote_code for _, component in spec.components())
    assert parse_spec(spec.to_string()) == spec
    plain = parse_spec(f"base=some/model,trust_remote_code={word}")
    assert plain.to_string() == "base=some/model,trust_remote_code=true" and parse_spec(plain.to_string()) == plain


def test_trust_remote_code_quoted_false_in_yaml_and_dicts_stays_off(tmp_path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text('base: L\nft: F\nref: S\ntrust_remote_code: "False"\n')
    assert not any(component.trust_remote_code for _, component in parse_spec(path).components())
    per_component = parse_spec({"base": {"model": "L", "trust_remote_code": "False"}, "ft": "F", "ref": "S"})
    assert per_component.base.trust_remote_code is False
    real_bool = parse_spec({"base": "L", "deltas": [{"ft": "F", "ref": "S"}], "trust_remote_code": True})
    assert real_bool.deltas[0].ft.trust_remote_code is True


@pytest.mark.parametrize(
    ("value", "culprit"),
    [
        ("base=B,ft=F,ref=R,trust_remote_code=maybe", "trust_remote_code='maybe' is not a boolean"),
        ({"base": "B", "trust_remote_code": "off"}, "trust_remote_code='off' is not a boolean"),
        ({"base": {"model": "B", "trust_remote_code": 2}}, "component base: trust_remote_code=2 is not a boolean"),
    ],
)
def test_a_boolean_that_is_not_one_is_a_one_line_error(value: Any, culprit: str) -> None:
    with pytest.raises(EFTEvalError, match=culprit) as caught:
        parse_spec(value)
    assert "\n" not in str(caught.value)


def test_with_overrides_sets_dtype_and_device_on_every_component() -> None:
    spec = parse_spec("base=B,ft=F,ft2=G,ref=R,ref2_dtype=fp16,alpha=0.5")
    overridden = spec.with_overrides(dtype="bf16", device="cuda:1")
    assert [(role, c.dtype, c.device) for role, c in overridden.components()] == [
        (role, "bf16", "cuda:1") for role in ("base", "ft", "ref", "ft2", "ref2")
    ]
    assert [c.model for _, c in overridden.components()] == [c.model for _, c in spec.components()]
    assert spec.with_overrides(device="cuda").base.dtype == "auto"  # None leaves a field alone
    assert spec.with_overrides() is spec
