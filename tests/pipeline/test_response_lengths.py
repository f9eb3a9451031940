"""Every sample records its response's token count and why it ended, as `EFTModel.generate` reports them.

A scripted model (`build_chain_model`: greedy decoding writes one fixed answer, then EOS) makes each
ending certain: EOS, the length limit, or a task's stop string (a task of the user's own, whose
`until` the answer reaches).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import HH_FILE, judge_answer, own_task

from eft_eval.cli import main
from eft_eval.models import EFTModel
from eft_eval.testing import LoopbackServer, build_chain_model

TASK_STOPS = ["\n\nHuman:", "\nHuman:"]  # tasks/_judged_task.yaml's `until`


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_chain(model: Path, output: Path, max_new_tokens: int, *task: str) -> str:
    """`eft-eval run` of `model` on two HH prompts (or `task`: the task and its flags)."""
    stderr, stdout = io.StringIO(), io.StringIO()
    task = task or ("hh_harmless", "--data-files", str(HH_FILE))
    with LoopbackServer(judge_answer) as server, contextlib.redirect_stderr(stderr), \
            contextlib.redirect_stdout(stdout):
        code = main(["run", *task, "--model", str(model), "--limit", "2", "--max-new-tokens", str(max_new_tokens),
                     "--judges", "helpfulness", "--base-url", server.base_url, "--output", str(output),
                     "--no-progress"])
    assert code == 0, stderr.getvalue()[-2000:]
    return stdout.getvalue()


@pytest.mark.parametrize(("answer", "max_new_tokens", "own", "finish_reason"), [
    ("Sure, glad to help.", 40, False, "stop"),  # EOS
    ("Sure, glad to help.", 3, False, "length"),
    ("Sure thing. Human: more", 40, True, "Human:"),  # the task's stop string
])
def test_samples_record_the_length_and_ending_generate_reports(
    tmp_path: Path, answer: str, max_new_tokens: int, own: bool, finish_reason: str
) -> None:
    model = build_chain_model(tmp_path / "chain", answer)
    output = tmp_path / "run"
    task = ("own_prompts", "--include-path", str(own_task(tmp_path / "tasks"))) if own else ()
    printed = run_chain(model, output, max_new_tokens, *task)

    samples = read_rows(output / "samples.jsonl")
    expected = EFTModel.from_spec(str(model)).generate([row["query"] for row in samples],
                                                       max_new_tokens=max_new_tokens,
                                                       stop=["Human:"] if own else TASK_STOPS)
    assert [(row["response_tokens"], row["finish_reason"]) for row in samples] == [
        (len(g.token_ids), g.recorded_finish_reason) for g in expected]
    assert {row["finish_reason"] for row in samples} == {finish_reason}
    assert [row["response"] for row in samples] == [g.text for g in expected]
    stored = read_rows(output / "generations.jsonl")
    assert sorted((line["response_tokens"], line["finish_reason"]) for line in stored) == sorted(
        (row["response_tokens"], row["finish_reason"]) for row in samples)

    # Results: the share cut off and the mean length, each with an interval.
    length = json.loads((output / "results.json").read_text())["length"]
    mean = sum(len(g.token_ids) for g in expected) / len(expected)
    assert length["response_tokens"]["value"] == pytest.approx(mean)
    assert length["cut_off"]["value"] == (1.0 if finish_reason == "length" else 0.0)
    assert length["response_tokens"]["ci_low"] <= mean <= length["response_tokens"]["ci_high"]
    assert length["n"] == len(samples)
    cut_off = "100.0%" if finish_reason == "length" else "0.0%"
    assert f"{mean:.1f} tokens (95% CI" in (output / "report.html").read_text()  # the report's configuration
    assert re.search(rf"response tokens \(mean, 95% CI\).*\n\S+\s+{mean:.1f} \(.*\)\s+{re.escape(cut_off)}", printed)


def test_a_resumed_run_keeps_the_recorded_lengths(tmp_path: Path) -> None:
    """The second run generates nothing: the lengths come back from generations.jsonl."""
    model = build_chain_model(tmp_path / "chain", "Sure, glad to help.")
    output = tmp_path / "run"
    run_chain(model, output, 3)
    first = read_rows(output / "samples.jsonl")
    (output / "samples.jsonl").unlink()
    run_chain(model, output, 3)
    again = read_rows(output / "samples.jsonl")
    assert [(r["response_tokens"], r["finish_reason"]) for r in again] == [
        (r["response_tokens"], r["finish_reason"]) for r in first] == [(3, "length")] * 2
