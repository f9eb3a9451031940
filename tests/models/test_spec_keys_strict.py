"""Specs and lm-eval model_args that used to mean another model than the one written: roles
named twice, values typed by someone else's parser, sampling values that are not what they
look like, contexts longer than the model's. Each is one line naming the key, never a guess."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


# -- lm-eval model_args: parsed by the spec parser, not by lm-eval -------------------------------------


def _spec_of(family: dict[str, Path]) -> str:
    return f"base={family['large_base']},ft={family['small_ft']},ref={family['small_base']}"


@pytest.fixture(scope="module")
def include_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lm_eval_helpers import write_tasks

    return write_tasks(tmp_path_factory.mktemp("hardening_tasks"))


def _lm_eval(model_args: list[str], include_path: Path, output: Path, *extra: str) -> int:
    from eft_eval.cli import main

    return main(["lm-eval", "--model", "eft", "--model_args", *model_args, "--tasks", "tiny_mc", "--limit", "1",
                 "--include_path", str(include_path), "--output_path", str(output), "--device", "cpu", *extra])


@pytest.mark.slow  # two real lm-eval runs
def test_lm_eval_cli_model_args_keep_the_text_as_typed(
    tiny_family: dict[str, Path], include_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lm-eval's CLI made `base=123` an int (a folder named 123 could not be used) and
    `ft_system_prompt=true` a bool; both are text, as everywhere else."""
    import shutil

    from lm_eval_helpers import read_output

    shutil.copytree(tiny_family["large_base"], tmp_path / "123")
    monkeypatch.chdir(tmp_path)
    args = f"base=123,ft={tiny_family['small_ft']},ref={tiny_family['small_base']},ft_system_prompt=true"
    assert _lm_eval([args, "batch_size=2"], include_path, tmp_path / "out") == 0
    results, _ = read_output(tmp_path / "out")
    spec = parse_spec(results["config"]["eft_spec"])
    assert spec.base.model == "123" and spec.deltas[0].ft.system_prompt == "true"
    assert spec.deltas[0].ft.model == str(tiny_family["small_ft"])


@pytest.mark.parametrize(
    "model_args",
    [["{spec},beta=1,beta=2"], ["{spec},beta=1", "beta=2"], ["{spec}", "--model_args", "beta=1,beta=2"]],
)
def test_lm_eval_cli_model_args_given_twice_are_one_line(
    model_args: list[str], tiny_family: dict[str, Path], include_path: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """lm-eval's CLI kept the last value (beta 2) with a log line; `beta` is given twice."""
    args = [arg.format(spec=_spec_of(tiny_family)) for arg in model_args]
    assert _lm_eval(args, include_path, tmp_path) == 2
    assert "spec key 'beta' given twice" in capsys.readouterr().err.strip().splitlines()[-1]


def test_lm_eval_cli_arguments_of_other_models_are_untouched() -> None:
    from eft_eval.lm_eval._args import carry_model_args_unparsed

    argv = ["--model", "hf", "--model_args", "pretrained=gpt2,dtype=float32", "--tasks", "x"]
    assert carry_model_args_unparsed(argv) == argv
    carried = carry_model_args_unparsed(["-M", "eft", "-abase=1", "--tasks", "x", "--model_args=w1=2"])
    assert carried == ["-M", "eft", "--model_args", '{"eft_model_args": "base=1,w1=2"}', "--tasks", "x"]


def test_lm_evals_own_flags_join_the_text_but_not_twice(tiny_family: dict[str, Path]) -> None:
    """`--trust_remote_code` makes lm-eval add `trust_remote_code=True` to the model_args dict."""
    from eft_eval.lm_eval._args import with_cli_additions

    text = _spec_of(tiny_family)
    assert with_cli_additions({"eft_model_args": text, "trust_remote_code": True}) == f"{text},trust_remote_code=true"
    with pytest.raises(EFTEvalError, match="trust_remote_code is given in --model_args and by another lm-eval flag"):
        with_cli_additions({"eft_model_args": f"{text},trust_remote_code=false", "trust_remote_code": True})


def test_a_model_args_dict_with_typed_values_is_refused(tiny_family: dict[str, Path]) -> None:
    """A dict (lm-eval's Python API, its --config YAML) holds what its author typed: a boolean
    system prompt is not text."""
    from lm_eval.api.registry import get_model

    arg_dict = {"base": str(tiny_family["large_base"]), "ft": str(tiny_family["small_ft"]),
                "ref": str(tiny_family["small_base"]), "ft_system_prompt": True}
    with pytest.raises(EFTEvalError, match="component ft: system_prompt=True must be text"):
        get_model("eft").create_from_arg_obj(arg_dict, {"device": "cpu"})


# -- lm-eval gen_kwargs: sampling values that are not what they look like -----------------------------


@pytest.fixture(scope="module")
def eft_lm(tiny_family: dict[str, Path]) -> Any:
    from eft_eval.lm_eval._backend import EFTLM

    return EFTLM(spec=_spec_of(tiny_family), batch_size=4, max_length=24)


def _generate(lm: Any, contexts: list[str], **gen_kwargs: Any) -> list[str]:
    from lm_eval.api.instance import Instance

    kwargs = {"until": ["\n\n"], "max_gen_toks": 4, **gen_kwargs}
    requests = [Instance("generate_until", doc={}, arguments=(context, dict(kwargs)), idx=i,
                         metadata=("tiny_gen", i, 1)) for i, context in enumerate(contexts)]
    return list(lm.generate_until(requests, disable_tqdm=True))


@pytest.mark.parametrize(
    ("gen_kwargs", "message"),
    [
        ({"do_sample": True, "temperature": 1.0, "top_p": 0},
         "top_p=0 is out of range (expected a finite number > 0 and <= 1)"),
        ({"do_sample": True, "temperature": 1.0, "top_p": "0.0"}, "top_p='0.0' is out of range"),
        ({"do_sample": True, "temperature": -1}, "temperature=-1 is out of range (expected a finite number >= 0)"),
        ({"do_sample": True, "temperature": 1.0, "top_k": -3},
         "top_k=-3 is out of range (expected a whole number >= 0)"),
        ({"do_sample": True, "temperature": "nan"}, "temperature='nan' is not a finite number"),
        ({"max_gen_toks": "many"}, "max_gen_toks='many' is not a whole number"),
        ({"max_new_tokens": 0, "max_gen_toks": None}, "max_new_tokens=0 is out of range"),
    ],
)
def test_bad_sampling_gen_kwargs_are_one_line_naming_the_task(eft_lm: Any, gen_kwargs: dict[str, Any],
                                                              message: str) -> None:
    with pytest.raises(EFTEvalError) as error:
        _generate(eft_lm, ["The quick brown fox"], **gen_kwargs)
    text = str(error.value)
    assert text.startswith("gen_kwargs of task 'tiny_gen' (its YAML's generation_kwargs or --gen_kwargs): ")
    assert message in text and "\n" not in text


def test_lm_evals_sampling_conventions_are_kept(eft_lm: Any) -> None:
    greedy = _generate(eft_lm, ["The quick brown fox"] * 3, do_sample=False)
    assert len(set(greedy)) == 1
    assert _generate(eft_lm, ["The quick brown fox"] * 3, do_sample=True, temperature=0) == greedy  # 0 is greedy
    assert len(set(_generate(eft_lm, ["The quick brown fox"] * 3, temperature=1.0, top_p=1, top_k=0))) == 3


@pytest.mark.slow  # a real lm-eval run
def test_a_bad_gen_kwarg_from_the_command_line_names_it(
    tiny_family: dict[str, Path], include_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eft_eval.cli import main

    code = main(["lm-eval", "--model", "eft", "--model_args", _spec_of(tiny_family), "--tasks", "tiny_gen",
                 "--limit", "1", "--include_path", str(include_path), "--device", "cpu",
                 "--gen_kwargs", "do_sample=true,temperature=1,top_k=-3"])
    assert code == 2
    message = "gen_kwargs of task 'tiny_gen' (its YAML's generation_kwargs or --gen_kwargs): top_k=-3.0 is out of range"
    assert any(message in line for line in capsys.readouterr().err.splitlines())  # (lm-eval read -3 as -3.0)


# -- lm-eval contexts longer than max_length ------------------------------------------------------------


LONG = " ".join(["The quick brown fox jumps over the lazy dog."] * 6)


def test_long_loglikelihood_contexts_are_cut_from_the_left_and_said_once(
    eft_lm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from lm_eval.api.instance import Instance

    def request(context: str) -> Any:
        return Instance("loglikelihood", doc={}, arguments=(context, " dog"), idx=0, metadata=("tiny_mc", 0, 1))

    with caplog.at_level("WARNING", logger="eft_eval.lm_eval._backend"):
        long, _ = eft_lm.loglikelihood([request(LONG), request("Hello")], disable_tqdm=True)
    warnings = [r.getMessage() for r in caplog.records if "do not fit" in r.getMessage()]
    assert warnings == [(
        "eft: 1 of 2 loglikelihood requests do not fit max_length=24 tokens: their contexts were cut from the left, "
        "as lm-eval's hf backend does (a larger max_length= in model_args, if the models allow it)"
    )]
    context, continuation = eft_lm._encode_pair(LONG, " dog")  # lm-eval's own encoding
    kept = context[-(eft_lm.max_length + 1 - len(continuation)):]  # what hf keeps
    [expected] = eft_lm._loglikelihood_tokens([(None, kept, continuation)], disable_tqdm=True)
    assert len(context) + len(continuation) > eft_lm.max_length + 1 and long == pytest.approx(expected, abs=1e-5)


def test_long_generation_prompts_are_cut_from_the_left_and_said_once(
    eft_lm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="eft_eval.lm_eval._backend"):
        answers = _generate(eft_lm, [LONG, LONG + " Why?", "Hi"], do_sample=False)
    assert len(answers) == 3
    warnings = [r.getMessage() for r in caplog.records if "do not fit" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("eft: 2 of 3 generate_until requests do not fit")


def test_a_max_length_past_a_components_context_is_refused(tiny_family: dict[str, Path]) -> None:
    """It turned off the truncation a long request needs (past its context GPT-2 fails, RoPE runs on)."""
    from eft_eval.lm_eval._backend import EFTLM

    with pytest.raises(EFTEvalError, match=r"eft model_args: max_length=100000 is more than base \(.*large_base\) "
                                           r"supports \(2048 tokens\): lower it or leave it out"):
        EFTLM(spec=_spec_of(tiny_family), max_length=100000)


def test_a_spec_file_given_as_spec_in_model_args_string(tiny_family: dict[str, Path], tmp_path: Path) -> None:
    """lm-eval's CLI dict took `spec=FILE`; the text form (which the CLI now passes) takes it too."""
    from lm_eval.api.registry import get_model

    path = tmp_path / "model.yaml"
    path.write_text(f"base: {tiny_family['small_base']}\n")
    lm = get_model("eft").create_from_arg_string(f"spec={path},batch_size=2", {"device": "cpu"})
    assert lm.spec.base.model == str(tiny_family["small_base"]) and lm.batch_size == 2
    with pytest.raises(EFTEvalError, match=r"either as spec=\.\.\. or as keys, not both \(extra: \['beta'\]\)"):
        get_model("eft").create_from_arg_string(f"spec={path},beta=2", {"device": "cpu"})
