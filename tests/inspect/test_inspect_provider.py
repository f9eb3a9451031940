"""The `eft` inspect provider: `inspect eval` of the example task on tiny models, checked against
`EFTModel.generate` and `EFTModel.score`; GenerateConfig mapping and refusals in-process."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inspect"


def spec_args(family: dict[str, Path]) -> dict[str, str]:
    return {"base": str(family["large_base"]), "ft": str(family["small_ft"]), "ref": str(family["small_base"])}


def inspect_eval(task: str, family: dict[str, Path], log_dir: Path, *extra: str,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`inspect eval TASK --model eft/up -M ...` as a user runs it (a fresh process, the entry point)."""
    model_args = [item for key, value in spec_args(family).items() for item in ("-M", f"{key}={value}")]
    command = [sys.executable, "-m", "inspect_ai", "eval", task, "--model", "eft/up", *model_args,
               "--log-dir", str(log_dir), "--display", "plain", *extra]
    return subprocess.run(command, cwd=EXAMPLES, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})})


def read_log(log_dir: Path) -> Any:
    from inspect_ai.log import read_eval_log

    [path] = log_dir.glob("*.eval")
    return read_eval_log(str(path))  # inspect's own reader: what `inspect view` opens


@pytest.fixture(scope="module")
def model(tiny_family: dict[str, Path]) -> Any:
    from eft_eval.models import EFTModel

    return EFTModel.from_spec(spec_args(tiny_family))


def test_the_eft_provider_is_registered_through_inspects_entry_point() -> None:
    entry_points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="inspect_ai")}
    assert entry_points.get("eft_eval") == "eft_eval.inspect._registry"


@pytest.mark.slow
def test_inspect_eval_of_the_hh_example_equals_generate_batched_with_eft_logprobs(
        tiny_family: dict[str, Path], model: Any, tmp_path: Path) -> None:
    done = inspect_eval("hh.py", tiny_family, tmp_path, "-T", "judges=none", "--max-tokens", "12", "--seed", "3",
                        "--logprobs", "--top-logprobs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    log = read_log(tmp_path)
    assert log.status == "success"
    samples = sorted(log.samples, key=lambda s: str(s.id))
    queries = [s.input for s in samples]
    expected = {json.loads(line)["query"] for line in (EXAMPLES / "data" / "hh_sample.jsonl").read_text().splitlines()}
    assert set(queries) == expected and len(queries) == 8
    # The same texts as EFTModel.generate with the same prompts, settings and seed (inspect's
    # default temperature is the OpenAI API's, 1: sampling).
    generations = model.generate(queries, max_new_tokens=12, do_sample=True, temperature=1.0, seed=3)
    assert [s.output.completion for s in samples] == [g.text for g in generations]
    assert len({g.text for g in generations}) > 1
    # Concurrent samples shared batches: 8 rows in fewer than 8 engine batches.
    engines = [s.output.metadata["eft"]["engine"] for s in samples]
    rows, batches = max(e["rows"] for e in engines), max(e["batches"] for e in engines)
    assert rows == 8 and batches < rows, engines
    # The log-probs in the log are the EFT model's, as EFTModel.score computes them.
    scores = model.score(queries, [g.token_ids for g in generations])
    for sample, generation, score in zip(samples, generations, scores):
        content = sample.output.choices[0].logprobs.content
        assert len(content) == len(generation.token_ids)
        assert [lp.logprob for lp in content] == pytest.approx(score.token_logprobs, abs=1e-5)
        assert all(len(lp.top_logprobs) == 2 and lp.top_logprobs[0].logprob >= lp.logprob - 1e-6 for lp in content)
        assert sample.output.choices[0].stop_reason == "max_tokens"


@pytest.fixture(scope="module")
def eft_model(tiny_family: dict[str, Path]) -> Any:
    from inspect_ai.model import get_model

    import eft_eval.inspect._registry  # noqa: F401 (registers `eft` as the entry point does)

    return get_model("eft/up", memoize=False, batch_size=4, **spec_args(tiny_family))


def generate(eft_model: Any, prompt: Any, **config: Any) -> Any:
    import asyncio

    from inspect_ai.model import GenerateConfig

    return asyncio.run(eft_model.generate(prompt, config=GenerateConfig(**config)))


def test_num_choices_sample_with_seed_plus_i_and_chat_renders_as_generate(eft_model: Any, model: Any) -> None:
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser

    output = generate(eft_model, "Why is the sky blue?", num_choices=2, seed=5, max_tokens=8, temperature=0.7)
    expected = [model.generate(["Why is the sky blue?"], max_new_tokens=8, do_sample=True, temperature=0.7,
                               seed=seed)[0].text for seed in (5, 6)]
    assert [choice.message.text for choice in output.choices] == expected
    conversation = [ChatMessageSystem(content="Be brief."), ChatMessageUser(content="Name a colour.")]
    output = generate(eft_model, conversation, max_tokens=6, temperature=0, stop_seqs=["e"])
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]
    [want] = model.generate([messages], max_new_tokens=6, stop=["e"])
    assert output.completion == want.text
    assert output.choices[0].logprobs is None


@pytest.mark.parametrize(("config", "message"), [
    ({"frequency_penalty": 0.5}, "GenerateConfig.frequency_penalty=0.5 cannot be honoured"),
    ({"logit_bias": {3: 1.0}}, "GenerateConfig.logit_bias"),
    ({"best_of": 2}, "GenerateConfig.best_of=2 cannot be honoured"),
    ({"top_logprobs": 2}, "top_logprobs needs logprobs=True"),
    ({"top_p": 1.5}, "top_p"),
])
def test_settings_eft_cannot_honour_are_one_line_errors(eft_model: Any, config: dict[str, Any], message: str) -> None:
    from eft_eval.errors import EFTEvalError

    with pytest.raises(EFTEvalError, match="^eft model: ") as raised:
        generate(eft_model, "Hi", max_tokens=2, **config)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_tools_and_images_are_refused(eft_model: Any) -> None:
    import asyncio

    from inspect_ai.model import ChatMessageUser, ContentImage
    from inspect_ai.tool import ToolInfo

    from eft_eval.errors import EFTEvalError

    tool = ToolInfo(name="search", description="search the web")
    with pytest.raises(EFTEvalError, match="do not call tools"):
        asyncio.run(eft_model.generate("Hi", tools=[tool]))
    with pytest.raises(EFTEvalError, match="image content"):
        generate(eft_model, [ChatMessageUser(content=[ContentImage(image="data:image/png;base64,AAAA")])])


def test_model_args_spec_file_preset_and_mistakes(tiny_family: dict[str, Path], tmp_path: Path) -> None:
    from eft_eval.errors import EFTEvalError
    from eft_eval.inspect import model_spec

    spec_file = tmp_path / "up.yaml"
    spec_file.write_text("".join(f"{k}: {v}\n" for k, v in spec_args(tiny_family).items()))
    from_file, options = model_spec({"spec": str(spec_file), "batch_size": 3})
    from_keys, _ = model_spec({**spec_args(tiny_family), "beta": 1})
    assert from_file == from_keys and options.batch_size == 3
    preset, _ = model_spec({"preset": "llama2:up"})
    assert "Llama-2" in preset.to_string()
    with pytest.raises(EFTEvalError, match="not both"):
        model_spec({"spec": str(spec_file), "beta": 2})
    with pytest.raises(EFTEvalError, match="no spec given"):
        model_spec({"batch_size": 2})
    with pytest.raises(EFTEvalError, match="unknown key 'bta'"):
        model_spec({**spec_args(tiny_family), "bta": 2})
    with pytest.raises(EFTEvalError, match="batch_size"):
        model_spec({**spec_args(tiny_family), "batch_size": 0})


def test_eft_eval_works_without_inspect_ai_installed() -> None:
    """inspect-ai is an extra: with it missing, eft-eval and `eft_eval.inspect` still import and the
    CLI runs; only using a provider or scorer needs it."""
    code = ("import sys; sys.modules['inspect_ai'] = None\n"
            "import eft_eval, eft_eval.inspect, eft_eval.cli\n"
            "assert 'judge_scorer' in eft_eval.inspect.__all__\n"
            "try:\n    eft_eval.inspect.judge_scorer\nexcept ImportError as error:\n    print('needs', error.name)\n"
            "eft_eval.cli.main(['bench', '--help'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "needs inspect_ai" in done.stdout and "inspect" in done.stdout


def test_task_samples_are_the_prompts_an_eft_eval_run_draws() -> None:
    from pipeline_helpers import HH_FILE

    from eft_eval.inspect import task_samples
    from eft_eval.pipeline import load_task

    dataset = task_samples("hh", data_files=[HH_FILE], selection_seed=2)
    loaded = load_task("hh", [], {"selection_seed": 2, "data_files": [str(HH_FILE.resolve())]})
    assert [s.input for s in dataset] == [doc["query"] for doc in loaded.task.eval_docs]
    assert len(dataset) == 256 and dataset.name == "hh"
