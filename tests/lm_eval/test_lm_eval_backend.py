"""The `eft` lm-eval backend, in-process: cross-checked against lm-eval's own `hf` backend,
chat rendering per component, the per-model response cache, sampling with repeats."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from lm_eval_helpers import (
    responses,
    write_tasks,
)

import eft_eval  # noqa: F401  (registers `eft` with lm-eval)
from eft_eval.errors import EFTEvalError


@pytest.fixture(scope="module")
def task_manager(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(write_tasks(tmp_path_factory.mktemp("lm_eval_tasks"))))


def evaluate(task_manager: Any, model: str, model_args: str, tasks: list[str], **kwargs: Any) -> dict[str, Any]:
    import lm_eval

    return lm_eval.simple_evaluate(
        model=model, model_args=model_args, tasks=tasks, task_manager=task_manager,
        log_samples=True, bootstrap_iters=0, **kwargs,
    )


def answers(results: dict[str, Any], task: str) -> list[list[Any]]:
    return responses(sorted(results["samples"][task], key=lambda row: row["doc_id"]))


def max_loglikelihood_gap(a: list[list[Any]], b: list[list[Any]]) -> float:
    return max(abs(x[0] - y[0]) for doc_a, doc_b in zip(a, b) for x, y in zip(doc_a, doc_b))


# -- cross-check against lm-eval's hf backend -------------------------------------------------------


@pytest.fixture(scope="module")
def family(tiny_family: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny family plus `chat_ft`: small_ft whose chat template ends without whitespace.

    lm-eval's `hf` backend moves a context's trailing whitespace into the continuation and scores
    it; `eft` scores the answer after each component's own prompt. A template without trailing
    whitespace makes the two definitions coincide, so chat numbers can be compared exactly.
    """
    import shutil

    from transformers import AutoTokenizer

    chat_ft = tmp_path_factory.mktemp("chat_ft") / "model"
    shutil.copytree(tiny_family["small_ft"], chat_ft)
    tokenizer = AutoTokenizer.from_pretrained(chat_ft)
    tokenizer.chat_template = tokenizer.chat_template.replace("<|assistant|>\n", "<|assistant|>")
    tokenizer.save_pretrained(chat_ft)
    return {**tiny_family, "chat_ft": chat_ft}


@pytest.fixture(scope="module")
def hf_reference(family: dict[str, Path], task_manager: Any) -> dict[str, dict[str, Any]]:
    """lm-eval's `hf` backend on the small fine-tuned model: plain and chat-templated runs."""
    def args(ft: str, max_length: int) -> str:
        return f"pretrained={family[ft]},max_length={max_length},dtype=float32"

    return {
        "plain": evaluate(task_manager, "hf", args("small_ft", 24), ["tiny_gen", "tiny_mc", "tiny_roll"],
                          batch_size=2, device="cpu"),
        # Longer: chat prompts cut to the last few tokens would all look alike.
        "chat": evaluate(task_manager, "hf", args("chat_ft", 64), ["tiny_gen", "tiny_mc"], batch_size=2,
                         device="cpu", apply_chat_template=True),
    }


def spec_of(family: dict[str, Path], base: str = "small_base", ft: str = "small_ft") -> str:
    return f"base={family[base]},ft={family[ft]},ref={family['small_base']}"


def eft_args(family: dict[str, Path], base: str = "small_base", ft: str = "small_ft", **extra: Any) -> str:
    """model_args: the spec plus backend options; max_length=24 (default) forces rolling windows."""
    options = {"max_length": 24, **extra}
    return ",".join([spec_of(family, base, ft), *(f"{k}={v}" for k, v in options.items())])


def test_base_equal_to_ref_gives_the_fine_tuned_models_numbers(
    tiny_family: dict[str, Path], task_manager: Any, hf_reference: dict[str, Any]
) -> None:
    """With base == ref the delta cancels: EFT is the fine-tuned model, so `eft` must agree with
    `hf` on it: loglikelihoods, greedy flags, rolling windows (max_length=24 forces several) and
    greedy generations."""
    eft = evaluate(task_manager, "eft", eft_args(tiny_family, batch_size=2), ["tiny_gen", "tiny_mc", "tiny_roll"])
    hf = hf_reference["plain"]
    gap = max_loglikelihood_gap(answers(eft, "tiny_mc"), answers(hf, "tiny_mc"))
    print(f"max |eft - hf| loglikelihood: {gap:.2e}")
    assert gap < 1e-4
    assert [[g for _, g in doc]
            for doc in answers(eft, "tiny_mc")] == [[g for _, g in doc] for doc in answers(hf, "tiny_mc")]
    rolling_eft, rolling_hf = answers(eft, "tiny_roll"), answers(hf, "tiny_roll")
    assert max(abs(a[0] - b[0]) for a, b in zip(rolling_eft, rolling_hf)) < 1e-3
    assert answers(eft, "tiny_gen") == answers(hf, "tiny_gen")
    assert any(text for [text] in answers(eft, "tiny_gen"))  # non-empty generations were compared


@pytest.fixture(scope="module")
def upscaled_mc(tiny_family: dict[str, Path], task_manager: Any) -> list[list[Any]]:
    """tiny_mc answers of a real up-scaling spec (large base), without any cache."""
    return answers(evaluate(task_manager, "eft", eft_args(tiny_family, base="large_base"), ["tiny_mc"]), "tiny_mc")


def test_a_different_base_moves_the_numbers_away_from_hf(
    upscaled_mc: list[list[Any]], hf_reference: dict[str, Any]
) -> None:
    """The cross-check above is not vacuous: a real up-scaling spec (large base) scores differently."""
    assert max_loglikelihood_gap(upscaled_mc, answers(hf_reference["plain"], "tiny_mc")) > 0.1


def test_chat_template_renders_per_component(
    family: dict[str, Path], task_manager: Any, hf_reference: dict[str, Any]
) -> None:
    """Under --apply_chat_template the fine-tuned component gets its chat template and base/ref
    the plain dialogue; with base == ref that equals `hf` applying the fine-tuned chat template."""
    eft = evaluate(task_manager, "eft", eft_args(family, ft="chat_ft", max_length=64), ["tiny_gen", "tiny_mc"],
                   apply_chat_template=True)
    hf_chat = hf_reference["chat"]
    assert max_loglikelihood_gap(answers(eft, "tiny_mc"), answers(hf_chat, "tiny_mc")) < 1e-4
    assert answers(eft, "tiny_gen") == answers(hf_chat, "tiny_gen")
    assert len({text for [text] in answers(eft, "tiny_gen")}) > 1  # each prompt reached the models whole
    # ... and chat numbers differ from plain ones, so the chat rendering really reached the models.
    assert max_loglikelihood_gap(answers(eft, "tiny_mc"), answers(hf_reference["plain"], "tiny_mc")) > 0.1


def test_conversation_is_rendered_in_each_components_format(tiny_family: dict[str, Path]) -> None:
    from eft_eval.lm_eval._backend import EFTLM
    from eft_eval.lm_eval._chat import Conversation

    lm = EFTLM(spec=spec_of(tiny_family))
    messages = [{"role": "user", "content": "Why is the sky blue?"}, {"role": "assistant", "content": "Because"}]
    context = lm.apply_chat_template(messages, add_generation_prompt=False)  # lm-eval's gen_prefix case
    conversation = Conversation.from_context(context)
    assert conversation is not None
    rendered = {c.role: conversation.render(c) for c in lm.model.forward_components}
    assert rendered["base"] == "\n\nHuman: Why is the sky blue?\n\nAssistant: Because"
    assert rendered["ft"] == "<s><|user|>\nWhy is the sky blue?</s>\n<|assistant|>\nBecause"
    assert Conversation.from_context("Question: plain text") is None


# -- the response cache ----------------------------------------------------------------------------


def test_use_cache_never_shares_answers_between_specs(
    tiny_family: dict[str, Path], task_manager: Any, tmp_path: Path, upscaled_mc: list[list[Any]]
) -> None:
    cache = str(tmp_path / "cache" / "responses")
    small = eft_args(tiny_family)
    large = eft_args(tiny_family, base="large_base")
    first = evaluate(task_manager, "eft", small, ["tiny_mc", "tiny_gen"], use_cache=cache)
    second = evaluate(task_manager, "eft", large, ["tiny_mc", "tiny_gen"], use_cache=cache)
    # The second spec computed its own answers instead of reading the first one's.
    assert max_loglikelihood_gap(answers(first, "tiny_mc"), answers(second, "tiny_mc")) > 0.1
    assert max_loglikelihood_gap(answers(second, "tiny_mc"), upscaled_mc) < 1e-5
    # One file per --use_cache path, one table per model, both filled.
    [database] = (tmp_path / "cache").glob("responses_rank0.db")
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        eft_tables = [t for t in tables if t.startswith("eft_")]
        rows = [connection.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in eft_tables]
    assert len(eft_tables) == 2 and all(count > 0 for count in rows)


def test_use_cache_answers_a_repeated_run_from_the_cache(
    tiny_family: dict[str, Path], task_manager: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eft_eval.lm_eval._backend import EFTLM

    cache = str(tmp_path / "responses")
    first = evaluate(task_manager, "eft", eft_args(tiny_family), ["tiny_mc"], use_cache=cache)

    def no_model_calls(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model was asked although every answer is cached")

    monkeypatch.setattr(EFTLM, "_score", no_model_calls)
    again = evaluate(task_manager, "eft", eft_args(tiny_family), ["tiny_mc"], use_cache=cache)
    assert answers(again, "tiny_mc") == answers(first, "tiny_mc")


# -- sampling ------------------------------------------------------------------------------------------


def test_sampled_copies_differ_but_do_not_depend_on_batching(tiny_family: dict[str, Path]) -> None:
    """lm-eval's `repeats` sends identical requests; each copy needs its own sample, and a copy's
    sample must not depend on the batch size (or on the process that runs it)."""
    from lm_eval.api.instance import Instance

    from eft_eval.lm_eval._backend import EFTLM

    gen_kwargs = {"until": ["\n\n"], "max_gen_toks": 10, "do_sample": True, "temperature": 1.0}
    requests = [
        Instance("generate_until", doc={}, arguments=(context, dict(gen_kwargs)), idx=i)
        for i, context in enumerate(["The quick brown fox"] * 3 + ["Why is the sky blue?"])
    ]
    spec = spec_of(tiny_family, base="large_base")
    batched = EFTLM(spec=spec, batch_size=4).generate_until(requests, disable_tqdm=True)
    one_by_one = EFTLM(spec=spec, batch_size=1, seed=0).generate_until(requests, disable_tqdm=True)
    other_seed = EFTLM(spec=spec, batch_size=4, seed=1).generate_until(requests, disable_tqdm=True)
    assert batched == one_by_one
    assert len(set(batched[:3])) == 3  # three copies, three different samples
    assert other_seed != batched


def test_do_sample_given_as_a_word_is_parsed_strictly(tiny_family: dict[str, Path]) -> None:
    """`--gen-kwargs do_sample=no` reaches the backend as the string "no"; `bool("no")` sampled."""
    from lm_eval.api.instance import Instance

    from eft_eval.lm_eval._backend import EFTLM

    lm = EFTLM(spec=spec_of(tiny_family, base="large_base"), batch_size=4)

    def copies(do_sample: Any) -> list[str]:
        gen_kwargs = {"until": ["\n\n"], "max_gen_toks": 10, "do_sample": do_sample, "temperature": 1.0}
        requests = [Instance("generate_until", doc={}, arguments=("The quick brown fox", dict(gen_kwargs)), idx=i)
                    for i in range(3)]
        return lm.generate_until(requests, disable_tqdm=True)

    assert len(set(copies("no"))) == 1 and copies("FALSE") == copies(False)  # greedy: one answer
    assert len(set(copies("yes"))) == 3  # sampled: each copy its own
    with pytest.raises(EFTEvalError, match="gen_kwargs .*: do_sample='maybe' is not a boolean"):
        copies("maybe")


def test_speculative_generation_gives_the_plain_generations(
    tiny_family: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`speculative_block=K` runs the speculative EFT decoder, whose exact mode keeps every token."""
    from lm_eval.api.instance import Instance

    from eft_eval.lm_eval._backend import EFTLM
    from eft_eval.models import _eft_model as eft_model

    drafted: list[int] = []
    real_decoder = eft_model.speculative_decoder

    def spy(model: Any, block: int, *args: Any, **kwargs: Any) -> Any:
        drafted.append(block)
        return real_decoder(model, block, *args, **kwargs)

    monkeypatch.setattr(eft_model, "speculative_decoder", spy)
    requests = [
        Instance("generate_until", doc={}, arguments=(context, dict(gen_kwargs)), idx=0)
        for context in ["The quick brown fox", "Why is the sky blue?"]
        for gen_kwargs in ({"until": ["\n\n"], "max_gen_toks": 10, "do_sample": False},
                           {"until": ["\n\n"], "max_gen_toks": 10, "do_sample": True, "temperature": 1.0})
    ]
    spec = spec_of(tiny_family, base="large_base")
    plain = EFTLM(spec=spec, batch_size=4).generate_until(requests, disable_tqdm=True)
    assert not drafted
    speculative = EFTLM(spec=spec, batch_size=4, speculative_block=3).generate_until(requests, disable_tqdm=True)
    assert drafted and set(drafted) == {3}
    assert speculative == plain


def test_generated_text_is_a_string_wherever_lm_eval_takes_one() -> None:
    """A response carries its length and finish reason through lm-eval's cache (pickle) and stays
    a plain string for lm-eval's filters, JSON and metrics (which cast a target with `type(answer)(target)`)."""
    import pickle

    from eft_eval.lm_eval import GeneratedText, length_fields

    text = GeneratedText("Hello.", 3, "length")
    again = pickle.loads(pickle.dumps(text))
    assert again == "Hello." and length_fields(again) == {"response_tokens": 3, "finish_reason": "length"}
    assert json.dumps([text]) == '["Hello."]'
    assert type(text)("gold") == "gold" and length_fields(type(text)("gold")) == {}
    assert length_fields("plain") == {}
