"""Pairwise judge YAMLs (`kind: pairwise`) and reading their verdicts from answers real judges give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eft_eval.errors import EFTEvalError
from eft_eval.judging import JudgeConfig, JudgeItem, judge_items_sync, load_judge_file, load_judges, parse_answer
from eft_eval.testing import LoopbackServer, Reply

ARENA = """\
name: arena
kind: pairwise
description: Arena-Hard's graded verdicts.
prompt: "Question: {query}\\n<A>{response_a}</A>\\n<B>{response_b}</B>\\nEnd with [[A>>B]], ... or [[B>>A]]."
verdict_format: "[[{verdict}]]"
verdicts: {"A>>B": 1, "A>B": 0.75, "A=B": 0.5, "B>A": 0.25, "B>>A": 0}
order_rule: side
judge_model: gpt-4-0613
"""


def arena(tmp_path: Path) -> Any:
    path = tmp_path / "arena.yaml"
    path.write_text(ARENA)
    return load_judge_file(path)


def preference() -> Any:
    (spec,) = load_judges(["preference"], kind="pairwise")
    return spec


@pytest.mark.parametrize(("answer", "verdict"), [
    # Reasoning names both responses, and even the word "verdict", before the final verdict.
    ("Reason: Response A gives the right date, but B explains the cause. A is shorter; B is clearer. "
     "My first verdict would be A, yet B covers more.\nVerdict: B", "B"),
    ("**Reason:** Both are correct; A adds an irrelevant aside.\n\n**Verdict:** B", "B"),
    ("Reason: Assistant A answers; Assistant B refuses.\nVerdict: Assistant A", "A"),
    ("Reason: neither is better.\nVerdict: Tie", "tie"),
    ("Reason: I'll write Verdict: A as a draft. On reflection, B is right.\nVerdict: B", "B"),  # the LAST one
    ("Reason: A is better.\nVerdict: \"A\".", "A"),
    ("Reason: close call.\n> Verdict: `tie`", "tie"),
])
def test_the_last_final_verdict_wins_whatever_the_reasoning_says(answer: str, verdict: str) -> None:
    parsed = parse_answer(answer, preference())
    assert (parsed.status, parsed.verdict) == ("scored", verdict)
    assert parsed.score == {"A": 1.0, "B": 0.0, "tie": 0.5}[verdict]
    assert "Verdict" not in parsed.reason.splitlines()[-1] or "draft" in parsed.reason


@pytest.mark.parametrize("answer", [
    "Reason: Response A is better than response B.",  # no verdict marker: "A" in prose is not one
    "Reason: A or B.\nVerdict: Answer A",  # a word starting with A is not the verdict A
    "Reason: both.\nVerdict: A and B equally... no, C",
    "",
])
def test_an_answer_without_a_final_verdict_is_unreadable_not_a_tie(answer: str) -> None:
    parsed = parse_answer(answer, preference())
    if "A and B" in answer:  # "A" is there, in the verdict's place: read as written
        assert parsed.verdict == "A"
        return
    assert parsed.status == "failed" and parsed.score is None
    assert parsed.error is not None


def test_graded_verdicts_map_to_declared_outcomes(tmp_path: Path) -> None:
    spec = arena(tmp_path)
    assert spec.pairwise and spec.order_rule == "side"
    text = ("Assistant A is correct while Assistant B makes an error; A>B on accuracy, though B>A on style.\n"
            "My final verdict is: [[A>>B]]")
    parsed = parse_answer(text, spec)
    assert (parsed.verdict, parsed.score) == ("A>>B", 1.0)  # not A>B, which is inside it
    assert parse_answer("Both fine. [[ A=B ]]", spec).score == 0.5
    assert parse_answer("So: [[B>A]]", spec).score == 0.25
    assert parse_answer("A>>B clearly, no brackets", spec).status == "failed"


def test_no_verdict_is_re_asked_with_the_format_then_recorded_as_failed(tmp_path: Path) -> None:
    answers = iter(["Response A is better.", "Reason: A is better.\nVerdict: A"])
    with LoopbackServer(lambda body: Reply(next(answers))) as server:
        config = JudgeConfig(base_url=server.base_url, api_key="sk-test", progress=False, cache_path=None)
        [judged] = judge_items_sync([JudgeItem("Q?", "first", "second")], [preference()], config)
        reask = server.requests[1]["messages"][-1]["content"]
    judgment = judged["preference"]
    assert (judgment["status"], judgment["verdict"], judgment["score"], judgment["attempts"]) == ("scored", "A", 1.0, 2)
    assert "Verdict: <A, B or tie>" in reask and "no final verdict" in reask
    # Both responses are in the one request, A first.
    prompt = server.requests[0]["messages"][0]["content"]
    assert prompt.index("first") < prompt.index("second") and "{response" not in prompt

    with LoopbackServer(lambda body: Reply("I cannot decide.")) as server:
        config = JudgeConfig(base_url=server.base_url, api_key="sk-test", progress=False, cache_path=None,
                             max_parse_retries=1)
        [judged] = judge_items_sync([JudgeItem("Q?", "first", "second")], [preference()], config)
    assert judged["preference"]["status"] == "failed" and judged["preference"]["score"] is None


def test_pairwise_judges_are_kept_apart_from_pointwise_ones(tmp_path: Path) -> None:
    assert "preference" not in [spec.name for spec in load_judges(None)]  # `judge` / `run` default: all pointwise
    with pytest.raises(EFTEvalError, match=r"judge 'preference' is a pairwise judge .*use it with `eft-eval pairwise`"):
        load_judges(["preference"])
    with pytest.raises(EFTEvalError, match="compares two responses"):
        preference().render_messages("Q?", "only one")
    # A pointwise judge's cache key does not change with the pairwise fields it does not use.
    (helpfulness,) = load_judges(["helpfulness"])
    import dataclasses

    assert dataclasses.replace(helpfulness, verdicts={"X": 1.0, "Y": 0.0}).fingerprint() == helpfulness.fingerprint()
    assert dataclasses.replace(preference(), order_rule="mean").fingerprint() == preference().fingerprint()
    assert dataclasses.replace(preference(), verdict_format="[[{verdict}]]").fingerprint() != \
        preference().fingerprint()


@pytest.mark.parametrize(("change", "message"), [
    ({"prompt": "Q {query} A {response_a}"}, r"field 'prompt' must contain the placeholder \{response_b\}"),
    ({"prompt": "{query} {response_a} {response_b} {other}"}, r"placeholder \{other\}"),
    ({"prompt": "{query} {response_a} {response_b} {response}"}, r"placeholder \{response\}, which is never"),
    ({"verdicts": {"A": 2, "B": 0}}, r"field 'verdicts.A' must be the outcome for response A"),
    ({"verdicts": {"A": 1, "a": 0}}, "differ only in case"),
    ({"verdict_format": "Verdict"}, r"field 'verdict_format' must be text holding \{verdict\} once"),
    ({"order_rule": "coin"}, r"field 'order_rule' unknown rule 'coin'"),
    ({"score": {"kind": "number"}}, "field 'score' is not a field of a pairwise judge"),
    ({"kind": "triple"}, "field 'kind' must be one of pointwise, pairwise"),
])
def test_pairwise_yaml_mistakes_are_one_line_naming_the_field(tmp_path: Path, change: dict[str, Any],
                                                              message: str) -> None:
    data = {"name": "p", "kind": "pairwise", "description": "d", "judge_model": "m",
            "prompt": "{query} {response_a} {response_b}", **change}
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    with pytest.raises(EFTEvalError, match=message):
        load_judge_file(path)


def test_the_local_backend_answers_pairwise_with_a_constrained_verdict(tmp_path: Path) -> None:
    from eft_eval.judging import LocalModelSettings
    from eft_eval.testing import build_chain_model

    # A model that always writes "... Verdict: B": the verdict is constrained to A, B or tie.
    model = build_chain_model(tmp_path / "model", "B explains more. Verdict: B")
    config = JudgeConfig(backend="local", local=LocalModelSettings(model=str(model), max_new_tokens=16),
                         cache_path=None, progress=False)
    [judged] = judge_items_sync([JudgeItem("Why is the sky blue?", "Because.", "Rayleigh scattering.")],
                                [preference()], config)
    judgment = judged["preference"]
    assert (judgment["status"], judgment["verdict"], judgment["score"]) == ("scored", "B", 0.0), judgment
    assert judgment["raw"].startswith("Reason:") and judgment["raw"].endswith("\nVerdict: B")
