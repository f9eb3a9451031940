"""`eft-eval lm-eval`: real lm-eval runs on local tasks, two processes under accelerate, bad input,
and `import eft_eval` being enough for lm-eval to find `eft`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval_helpers import (
    read_output,
    responses,
    subprocess_env,
    write_tasks,
)

from eft_eval.cli import main
from eft_eval.testing import free_port


@pytest.fixture(scope="module")
def include_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tasks(tmp_path_factory.mktemp("lm_eval_cli_tasks"))


def spec(family: dict[str, Path]) -> str:
    return f"base={family['large_base']},ft={family['small_ft']},ref={family['small_base']}"


def lm_eval_args(family: dict[str, Path], include_path: Path, output: Path) -> list[str]:
    return [
        "--model", "eft", "--model_args", f"{spec(family)},batch_size=2",
        "--tasks", "tiny_gen", "tiny_mc", "--include_path", str(include_path),
        "--output_path", str(output), "--log_samples",
    ]


@pytest.fixture(scope="module")
def one_process(tiny_family: dict[str, Path], include_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`eft-eval lm-eval` on a generate_until and a multiple-choice task, in this process."""
    output = tmp_path_factory.mktemp("one_process")
    assert main(["lm-eval", *lm_eval_args(tiny_family, include_path, output)]) == 0
    return output


@pytest.mark.slow  # lm-eval in a real subprocess
def test_lm_eval_command_writes_results_with_the_metrics(one_process: Path, tiny_family: dict[str, Path]) -> None:
    results, samples = read_output(one_process)
    assert set(results["results"]["tiny_gen"]) >= {"exact_match,none"}
    assert set(results["results"]["tiny_mc"]) >= {"acc,none", "acc_norm,none"}
    assert results["config"]["model"] == "eft"
    assert results["config"]["eft_spec"] == spec(tiny_family)
    assert [len(doc) for doc in responses(samples["tiny_mc"])] == [3, 2, 3]  # one answer per choice
    assert len(responses(samples["tiny_gen"])) == 3


@pytest.mark.slow  # lm-eval in a real subprocess
def test_two_processes_under_accelerate_give_the_one_process_results(
    one_process: Path, tiny_family: dict[str, Path], include_path: Path, tmp_path: Path
) -> None:
    # accelerate's CPU data parallelism: torch.distributed processes over gloo.
    env = {**subprocess_env(), "ACCELERATE_USE_CPU": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        "-m", "eft_eval.cli", "lm-eval", *lm_eval_args(tiny_family, include_path, tmp_path),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    two, two_samples = read_output(tmp_path)
    one, one_samples = read_output(one_process)
    assert two["config"]["eft_processes"] == 2 and one["config"]["eft_processes"] == 1
    for task in ("tiny_gen", "tiny_mc"):
        assert two["results"][task] == one["results"][task]
        assert [row["doc_id"] for row in two_samples[task]] == [0, 1, 2]  # every doc, gathered
    assert responses(two_samples["tiny_gen"]) == responses(one_samples["tiny_gen"])
    for doc_two, doc_one in zip(responses(two_samples["tiny_mc"]), responses(one_samples["tiny_mc"])):
        for (ll_two, greedy_two), (ll_one, greedy_one) in zip(doc_two, doc_one):
            assert ll_two == pytest.approx(ll_one, abs=1e-4) and greedy_two == greedy_one


@pytest.mark.slow  # lm-eval in a real subprocess
def test_bad_model_args_fail_on_one_line_naming_the_key(
    tiny_family: dict[str, Path], include_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = f"{spec(tiny_family)},temprature=0.5"
    code = main(["lm-eval", "--model", "eft", "--model_args", args, "--tasks", "tiny_mc",
                 "--include_path", str(include_path)])
    assert code == 2
    last = capsys.readouterr().err.splitlines()[-1]  # (the text as typed, not lm-eval's dict of it)
    assert "eft model_args: spec 'base=" in last and "unknown key 'temprature'" in last


@pytest.mark.parametrize(
    ("model_args", "named"),
    [
        ("base={small_base},ft={small_ft},ref={small_base},temprature=0.5", "unknown key 'temprature'"),
        ("ft={small_ft},ref={small_base}", "no base model: add base=MODEL_OR_PATH"),
        ("base={small_base},ft={small_ft}", "add ref=MODEL"),
        ("base={small_base}/missing,ft={small_ft},ref={small_base}", "eft model_args: base: cannot load model"),
        ("base={small_base},batch_size=two", "batch_size='two' is not an integer"),
    ],
)
@pytest.mark.parametrize("form", ["string", "dict"])
def test_bad_model_args_name_the_key(model_args: str, named: str, form: str, tiny_family: dict[str, Path]) -> None:
    """Both ways lm-eval builds a model: from a model_args string (Python API) or a dict (its CLI)."""
    from lm_eval.api.registry import get_model

    from eft_eval.errors import EFTEvalError

    text = model_args.format(**{k: str(v) for k, v in tiny_family.items()})
    backend = get_model("eft")
    with pytest.raises(EFTEvalError, match=named.replace("(", r"\(")):
        if form == "string":
            backend.create_from_arg_string(text, {"batch_size": 1, "device": "cpu"})
        else:
            backend.create_from_arg_obj(dict(item.split("=", 1) for item in text.split(",")), {"device": "cpu"})


@pytest.mark.slow  # lm-eval in a real subprocess
def test_lm_evals_own_unknown_task_error_comes_through(tiny_family: dict[str, Path], include_path: Path) -> None:
    with pytest.raises(ValueError, match="Tasks not found: no_such_task"):
        main(["lm-eval", "--model", "eft", "--model_args", f"base={tiny_family['small_base']}",
              "--tasks", "no_such_task", "--include_path", str(include_path)])


def test_lm_eval_flags_pass_through_untouched(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["lm-eval", "run", "--help"])  # lm-eval's help, not eft-eval's
    assert exit_info.value.code == 0
    assert "--apply_chat_template" in capsys.readouterr().out


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_import_eft_eval_is_enough_and_stays_light() -> None:
    out = _python(
        "import sys, eft_eval\n"
        "print('torch' in sys.modules)\n"
        "import lm_eval\n"
        "from lm_eval.api.registry import get_model\n"
        "print(get_model('eft').__name__, get_model('hf').__name__)\n"
    )
    assert out.split() == ["False", "EFTLM", "HFLM"]


@pytest.mark.slow  # lm-eval in a real subprocess
def test_import_eft_eval_after_lm_eval_also_registers() -> None:
    out = _python(
        "from lm_eval.api.registry import get_model\n"
        "import eft_eval\n"
        "print(get_model('eft').__name__, get_model('hf').__name__)\n"
    )
    assert out.split() == ["EFTLM", "HFLM"]


def test_backend_options_and_spec_keys_are_split() -> None:
    from eft_eval.lm_eval._args import (
        backend_options,
        parse_model_spec,
        split_model_args,
    )
    from eft_eval.models._presets import resolve_preset

    spec_text, options = split_model_args("base=a/1e5,ft=b,ref=c,batch_size=auto,max_length=64,seed=3")
    assert spec_text == "base=a/1e5,ft=b,ref=c"
    assert parse_model_spec(spec_text, {}).base.model == "a/1e5"  # stays a string, not a float
    assert backend_options({**options, "max_batch_size": 4}) == backend_options(
        {"batch_size": 4, "max_length": 64, "seed": 3}
    )
    spec_text, options = split_model_args("preset=llama2:up,dtype=bf16,batch_size=4")
    assert options == {"batch_size": "4"}
    preset = parse_model_spec(spec_text, {})
    assert (preset.base.model, preset.base.dtype) == (resolve_preset("llama2:up")["base"], "bf16")


def test_spec_device_wins_over_lm_evals_device(tiny_family: dict[str, Path]) -> None:
    """lm-eval's CLI always passes --device (default cuda:0) next to model_args' own device key."""
    from lm_eval.api.registry import get_model

    lm = get_model("eft").create_from_arg_obj(
        {"base": str(tiny_family["small_base"]), "device": "cpu"}, {"device": "cuda:0", "batch_size": 1}
    )
    assert lm.spec.base.device == "cpu" and str(lm.device) == "cpu"
