"""`eft-eval pairwise` / `analysis.pairwise` against a loopback judge that answers from a known rule.

The judge (`eft_eval.testing.PairwiseJudge`) says A with probability
sigmoid(strength(A) - strength(B) + first-position bias + length weight * length difference),
so what the command measures can be checked against what was simulated.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from eft_eval.analysis import pairwise
from eft_eval.cli import main
from eft_eval.errors import EFTEvalError
from eft_eval.judging import CostSettings, JudgeConfig
from eft_eval.stats import BootstrapSettings
from eft_eval.testing import BatchAPIFake, Hang, LoopbackServer, PairwiseJudge, Reply

FAST = BootstrapSettings(n_resamples=200)
PRICES = "per_tokens: 1000000\nbatch_discount: 0.5\nmodels:\n  gpt-4-0613: {input: 30.0, output: 60.0}\n"


def strength(text: str) -> float:
    """Responses carry their true quality: `q=0.7 ...`."""
    return float(text.split()[0].removeprefix("q="))


def write_run(folder: Path, responses: dict[Any, str], tokens: bool = True) -> Path:
    folder.mkdir(parents=True)
    rows = []
    for doc_id, response in responses.items():
        row: dict[str, Any] = {"doc_id": doc_id, "task": "t", "model": folder.name, "query": f"Question {doc_id}?",
                               "response": response, "judgments": {}}
        if tokens:
            row["response_tokens"] = len(response.split())
        rows.append(row)
    (folder / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def config(url: str, tmp_path: Path, **settings: Any) -> JudgeConfig:
    return JudgeConfig(base_url=url, api_key="sk-test", progress=False, cache_path=tmp_path / "unused.sqlite",
                       **settings)


def read_pairs(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]


def test_measured_position_inconsistency_matches_the_simulated_one(tmp_path: Path) -> None:
    n, bias = 400, 1.0
    deltas = [math.sin(i) * 1.5 for i in range(n)]  # the run's true advantage on each prompt
    run = write_run(tmp_path / "run", {i: f"q={d:.4f} run answer" for i, d in enumerate(deltas)})
    ref = write_run(tmp_path / "ref", {i: "q=0 reference answer" for i in range(n)})
    judge = PairwiseJudge(strength, first_position_bias=bias, seed=3)
    with LoopbackServer(judge) as server:
        results = pairwise([run], ref, tmp_path / "out", ["preference"], config(server.base_url, tmp_path),
                           bootstrap=FAST)
        assert server.request_count == 2 * n  # both orders of every pair

    def sigmoid(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    # Run first: it wins with sigmoid(d + bias); run second: with 1 - sigmoid(-d + bias).
    expected = sum(p1 * (1 - p2) + (1 - p1) * p2
                   for p1, p2 in ((sigmoid(d + bias), 1 - sigmoid(-d + bias)) for d in deltas)) / n
    measured = results["judges"]["preference"]["position_inconsistency"]
    assert measured["n"] == n
    assert abs(measured["value"] - expected) < 3 * measured["standard_error"], (measured, expected)
    assert measured["ci_low"] < expected < measured["ci_high"]
    per_run = results["judges"]["preference"]["runs"]["run"]
    assert per_run["position_inconsistency"]["value"] == measured["value"]
    assert per_run["n_inconsistent"] == round(measured["value"] * n)
    # Inconsistent pairs are ties (the default rule); both verdicts are kept, with their reasoning.
    rows = read_pairs(tmp_path / "out")
    flipped = [row["judgments"]["preference"] for row in rows if not row["judgments"]["preference"]["consistent"]]
    assert flipped and all(j["outcome"] == 0.5 for j in flipped)
    first = rows[0]["judgments"]["preference"]["verdicts"]["first"]
    assert first["verdict"] in ("A", "B") and "Response A" in first["reason"]
    # The win rate: a tie counts half.
    outcomes = [row["judgments"]["preference"]["outcome"] for row in rows]
    assert per_run["win_rate"]["value"] == pytest.approx(sum(outcomes) / n)
    assert per_run["wins"] + per_run["ties"] + per_run["losses"] == n


def test_length_control_sees_through_a_judge_that_likes_long_answers(tmp_path: Path) -> None:
    n = 200
    # Equal quality; the run's answers are longer on some prompts and shorter on others.
    run = write_run(tmp_path / "run", {i: "q=0 " + "word " * (5 + (i % 9) * 3) for i in range(n)})
    ref = write_run(tmp_path / "ref", {i: "q=0 " + "word " * 8 for i in range(n)})
    judge = PairwiseJudge(strength, length_weight=0.3, seed=1)
    with LoopbackServer(judge) as server:
        results = pairwise([run], ref, tmp_path / "out", ["preference"], config(server.base_url, tmp_path),
                           bootstrap=FAST)
    numbers = results["judges"]["preference"]["runs"]["run"]
    assert numbers["length_difference"]["mean_tokens"] > 3  # longer on average...
    assert numbers["win_rate"]["value"] > 0.6  # ...so the raw win rate favours it
    lc = numbers["length_controlled_win_rate"]
    assert lc["ci_low"] < 0.5 < lc["ci_high"] and abs(lc["value"] - 0.5) < abs(numbers["win_rate"]["value"] - 0.5)


def test_without_response_tokens_the_length_controlled_win_rate_is_undefined_and_says_why(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {i: f"q=1 run {i}" for i in range(6)}, tokens=False)
    ref = write_run(tmp_path / "ref", {i: f"q=0 ref {i}" for i in range(6)})
    with LoopbackServer(PairwiseJudge(strength)) as server:
        results = pairwise([run], ref, tmp_path / "out", None, config(server.base_url, tmp_path), bootstrap=FAST)
    numbers = results["judges"]["preference"]["runs"]["run"]
    assert numbers["length_controlled_win_rate"]["value"] is None  # NaN, written as null
    assert "6 of 6 compared pairs have no response_tokens" in numbers["length_controlled_note"]
    assert numbers["win_rate"]["value"] is not None


def test_unmatched_prompts_are_counted_and_several_runs_get_bradley_terry(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "shared-cache"))
    ref = write_run(tmp_path / "ref", {i: f"q=0 ref {i}" for i in range(30)})
    good = write_run(tmp_path / "good", {i: f"q=4 good {i}" for i in range(3, 33)})  # 3 new, 3 missing
    bad = write_run(tmp_path / "bad", {i: f"q=-4 bad {i}" for i in range(30)})
    with LoopbackServer(PairwiseJudge(strength)) as server:
        argv = ["pairwise", str(good), str(bad), "--against", str(ref), "--judges", "preference",
                "--output", str(tmp_path / "out"), "--base-url", server.base_url, "--no-progress",
                "--n-resamples", "200"]
        assert main(argv) == 0
        assert server.request_count == 2 * (27 + 30)
    printed = capsys.readouterr().out
    assert "unmatched" in printed and "preference" in printed
    assert "good: 3 prompt(s) not in the reference, 3 reference prompt(s) not in the run" in printed
    assert "bad:" not in printed
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["prompts"]["good"] == {"matched": 27, "run_only": 3, "reference_only": 3,
                                          "run_only_ids": [30, 31, 32], "reference_only_ids": [0, 1, 2]}
    assert results["prompts"]["bad"]["matched"] == 30 and results["prompts"]["bad"]["run_only"] == 0
    fit = results["judges"]["preference"]["bradley_terry"]
    assert fit["ranking"] == ["good", "ref", "bad"] and fit["anchor"] == "ref"
    assert fit["scores"]["good"]["ci_low"] > 1000 > fit["scores"]["bad"]["ci_high"]
    record = json.loads((tmp_path / "out" / "pairwise.json").read_text())
    assert [run["label"] for run in record["runs"]] == ["good", "bad"] and record["reference"]["label"] == "ref"
    assert (tmp_path / "out" / "judge-cache.sqlite").is_file() and not (tmp_path / "shared-cache").exists()


def test_batch_mode_equals_live(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {i: f"q={i % 3 - 1} run {i}" for i in range(8)})
    ref = write_run(tmp_path / "ref", {i: f"q=0 ref {i}" for i in range(8)})
    judge = PairwiseJudge(strength, first_position_bias=0.7)
    from eft_eval.judging import BatchSettings

    with BatchAPIFake(judge.answer) as api:
        pairwise([run], ref, tmp_path / "live", None, config(api.base_url, tmp_path), bootstrap=FAST)
        assert api.created_batches == []
        batch = BatchSettings(poll_interval=0.01)
        pairwise([run], ref, tmp_path / "batch", None, config(api.base_url, tmp_path, mode="batch", batch=batch),
                 bootstrap=FAST)
        assert len(api.created_batches) == 1 and api.batches[api.created_batches[0]]["request_counts"]["total"] == 16
    assert (tmp_path / "batch" / "pairs.jsonl").read_text() == (tmp_path / "live" / "pairs.jsonl").read_text()
    live = json.loads((tmp_path / "live" / "results.json").read_text())["judges"]
    assert json.loads((tmp_path / "batch" / "results.json").read_text())["judges"] == live
    assert (tmp_path / "batch" / "judge-batches.json").is_file()


def test_budget_counts_two_requests_per_pair(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {i: f"q=1 run {i}" for i in range(5)})
    ref = write_run(tmp_path / "ref", {i: f"q=0 ref {i}" for i in range(5)})
    (tmp_path / "prices.yaml").write_text(PRICES)
    with LoopbackServer(PairwiseJudge(strength)) as server:
        def priced(budget: float) -> JudgeConfig:
            return config(server.base_url, tmp_path, cost=CostSettings(prices=tmp_path / "prices.yaml", budget=budget))

        with pytest.raises(EFTEvalError, match=r"\(10 requests not in the cache\)") as refused:
            pairwise([run], ref, tmp_path / "out", None, priced(0.01), bootstrap=FAST)
        assert server.request_count == 0
        needed = float(str(refused.value).split("needs up to $")[1].split()[0].rstrip(","))
        # Each request's worst case is its answer limit (512 tokens at $60/M) plus its prompt.
        assert needed > 10 * 512 * 60 / 1e6
        results = pairwise([run], ref, tmp_path / "out", None, priced(needed * 1.01), bootstrap=FAST)
        assert server.request_count == 10
    [line] = results["cost"]["by_judge"]
    assert line["requests"] == 10 and line["judge"] == "preference"
    assert 0 < results["cost"]["new_usd"] <= needed


def _cli(runs: list[Path], ref: Path, out: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "eft_eval.cli", "pairwise", *map(str, runs), "--against", str(ref),
            "--output", str(out), "--base-url", url, "--no-progress", "--concurrency", "2", "--n-resamples", "50"]


def test_a_killed_pairwise_re_run_asks_no_pair_twice(tmp_path: Path) -> None:
    n = 12
    run = write_run(tmp_path / "run", {i: f"q=1 run {i}" for i in range(n)})
    ref = write_run(tmp_path / "ref", {i: f"q=0 ref {i}" for i in range(n)})
    judge = PairwiseJudge(strength, first_position_bias=0.3)
    answered: list[str] = []
    lock = threading.Lock()
    stop_after = 9
    killed = threading.Event()

    def script(body: dict[str, Any]) -> Reply | Hang:
        with lock:
            if not killed.is_set() and len(answered) >= stop_after:
                return Hang(60)  # the rest wait until the command is killed
            answered.append(json.dumps(body["messages"]))
        return judge(body)

    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1",
           "EFT_EVAL_CACHE_DIR": str(tmp_path / "shared-cache")}  # unused: the cache is in the output folder
    out = tmp_path / "out"
    # One server for both runs: the endpoint is part of each answer's cache key.
    with LoopbackServer(script) as server:
        first = subprocess.Popen(_cli([run], ref, out, server.base_url), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while server.request_count <= stop_after and time.monotonic() < deadline:
            assert first.poll() is None, first.stderr.read().decode()[-2000:] if first.stderr else ""
            time.sleep(0.05)
        time.sleep(0.3)  # the answers given are committed to the cache as they arrive
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=60) == -signal.SIGKILL
        assert len(answered) == stop_after and not (out / "pairs.jsonl").exists()
        killed.set()

        second = subprocess.run(_cli([run], ref, out, server.base_url), env=env, capture_output=True, text=True,
                                timeout=300, check=False)
        assert second.returncode == 0, second.stderr[-3000:]
    first_answers, asked_again = answered[:stop_after], answered[stop_after:]
    assert not set(asked_again) & set(first_answers)  # no pair asked twice
    assert len(asked_again) == 2 * n - stop_after
    assert len(read_pairs(out)) == n
    assert json.loads((out / "pairwise.json").read_text())["resumed"] == 1


def test_runs_must_share_prompts_and_judges_must_be_pairwise(tmp_path: Path) -> None:
    ref = write_run(tmp_path / "ref", {0: "q=0 a", 1: "q=0 b"})
    other = tmp_path / "other"
    other.mkdir()
    (other / "samples.jsonl").write_text(json.dumps({"doc_id": 0, "query": "Another question?", "response": "x"})
                                         + "\n")
    cfg = JudgeConfig(base_url="http://127.0.0.1:9/v1", api_key="sk-test", progress=False, cache_path=None)
    with pytest.raises(EFTEvalError, match=r"other/samples.jsonl:1: doc_id 0 holds another prompt"):
        pairwise([other], ref, tmp_path / "out", None, cfg)
    with pytest.raises(EFTEvalError, match=r"judge 'helpfulness' is a pointwise judge .*`eft-eval pairwise` needs"):
        pairwise([ref], ref, tmp_path / "out", ["helpfulness"], cfg)
    with pytest.raises(EFTEvalError, match=r"two runs are both called 'ref'"):
        pairwise([ref], ref, tmp_path / "out", None, cfg)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    run = write_run(tmp_path / "run", {0: "q=0 c"})
    with pytest.raises(EFTEvalError, match=r"taken: exists and is not an `eft-eval pairwise` folder"):
        pairwise([run], ref, tmp_path / "taken", None, cfg)


def test_a_graded_judge_from_an_include_path_with_the_side_rule(tmp_path: Path) -> None:
    judges = tmp_path / "judges"
    judges.mkdir()
    (judges / "arena.yaml").write_text(
        "name: arena\nkind: pairwise\ndescription: graded\njudge_model: gpt-4-0613\norder_rule: side\n"
        "prompt: \"{query}\\n<A>{response_a}</A>\\n<B>{response_b}</B>\"\nverdict_format: \"[[{verdict}]]\"\n"
        "verdicts: {\"A>>B\": 1, \"A>B\": 0.75, \"A=B\": 0.5, \"B>A\": 0.25, \"B>>A\": 0}\n")
    run = write_run(tmp_path / "run", {i: f"strong {i}" for i in range(6)})
    ref = write_run(tmp_path / "ref", {i: f"weak {i}" for i in range(6)})

    def graded(body: dict[str, Any]) -> Reply:
        prompt = body["messages"][0]["content"]
        # Prefers the strong answer in both orders, more strongly when it comes first.
        first = prompt.split("<A>")[1].startswith("strong")
        verdict = "[[A>>B]]" if first else "[[B>A]]"
        return Reply(f"A is strong, B is weak; [[A>B]] at least.\nFinal verdict: {verdict}")

    with LoopbackServer(graded) as server:
        results = pairwise([run], ref, tmp_path / "out", ["arena"], config(server.base_url, tmp_path),
                           include_paths=[str(judges)], bootstrap=FAST)
    numbers = results["judges"]["arena"]["runs"]["run"]
    assert numbers["position_inconsistency"]["value"] == 0.0  # same side in both orders: consistent
    assert numbers["win_rate"]["value"] == pytest.approx((1.0 + 0.75) / 2)
    row = read_pairs(tmp_path / "out")[0]["judgments"]["arena"]
    assert (row["first"], row["swapped"], row["consistent"]) == (1.0, 0.75, True)
    assert row["verdicts"]["swapped"]["verdict"] == "B>A"


def test_judge_samples_ask_each_order_k_times_and_average_the_outcome(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {i: f"q=0.5 run {i}" for i in range(4)})
    ref = write_run(tmp_path / "ref", {i: f"q=0 ref {i}" for i in range(4)})
    with LoopbackServer(PairwiseJudge(strength, first_position_bias=0.5)) as server:
        results = pairwise([run], ref, tmp_path / "out", None, config(server.base_url, tmp_path, samples=3),
                           bootstrap=FAST)
        assert server.request_count == 4 * 2 * 3  # pairs x orders x samples
        seeds = sorted({body.get("seed", 0) for body in server.requests})
    assert seeds == [0, 1, 2]
    row = read_pairs(tmp_path / "out")[0]["judgments"]["preference"]
    first = row["verdicts"]["first"]
    assert [s["verdict"] for s in first["samples"]] and len(first["samples"]) == 3
    # The order's outcome is the mean of its 3 verdicts; the pair's, their combination.
    assert first["score"] == pytest.approx(sum(s["score"] for s in first["samples"]) / 3)
    assert results["judges"]["preference"]["runs"]["run"]["n_compared"] == 4
