"""The cost ledger and `--budget`, against a real loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from eft_eval.cli import main
from eft_eval.errors import EFTEvalError
from eft_eval.judging import BatchSettings, CostSettings, JudgeConfig, judge_files
from eft_eval.judging._prices import SHIPPED_PRICES, load_prices
from eft_eval.testing import BatchAPIFake, LoopbackServer, Reply

PRICES = "per_tokens: 1000000\nbatch_discount: 0.5\nmodels:\n  gpt-4-0613: {input: 30.0, output: 60.0}\n"
ANSWER = "Reason: Nothing false.\nScore: 0"  # 5 words: the loopback counts words as tokens


def inputs(tmp_path: Path, n: int = 4) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"query": f"Q{i}?", "response": f"Answer {i}."}) + "\n" for i in range(n)))
    return path


def prices(tmp_path: Path, text: str = PRICES) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return path


def config(server: Any, tmp_path: Path, budget: float | None = None, **settings: Any) -> JudgeConfig:
    settings = {"cache_path": tmp_path / "cache.sqlite", **settings}
    return JudgeConfig(base_url=server.base_url, api_key="sk-test", progress=False,
                       cost=CostSettings(prices=prices(tmp_path), budget=budget), **settings)


def test_ledger_prices_usage_per_judge_and_mode_in_results(tmp_path: Path) -> None:
    with LoopbackServer(lambda body: Reply(text=ANSWER)) as server:
        results = judge_files([inputs(tmp_path)], ["factuality"], tmp_path / "out", config(server, tmp_path))
        first = list(server.requests)
        server.reset_counts()  # re-run against the same endpoint: all from the cache
        again = judge_files([inputs(tmp_path)], ["factuality"], tmp_path / "out", config(server, tmp_path))
        assert server.request_count == 0
    cost = results["cost"]
    prompt = sum(len(str(m["content"]).split()) for body in first for m in body["messages"])
    expected = prompt * 30e-6 + 4 * 5 * 60e-6
    [row] = cost["by_judge"]
    assert (row["judge"], row["judge_model"], row["mode"], row["requests"]) == ("factuality", "gpt-4-0613", "live", 4)
    assert row["usd"] == pytest.approx(expected) and cost["total_usd"] == pytest.approx(expected)
    assert cost["new_usd"] == pytest.approx(expected)
    assert json.loads((tmp_path / "out" / "results.json").read_text())["cost"] == again["cost"]
    assert again["cost"]["total_usd"] == pytest.approx(expected)  # what the judgments cost...
    assert again["cost"]["new_usd"] == 0  # ...none of it spent now
    assert again["cost"]["by_judge"][0]["cached_requests"] == 4


def test_batch_answers_are_priced_at_the_batch_discount(tmp_path: Path) -> None:
    with BatchAPIFake(lambda body: ANSWER) as api:
        live = judge_files([inputs(tmp_path)], ["factuality"], tmp_path / "live", config(api, tmp_path))
        batch = judge_files([inputs(tmp_path)], ["factuality"], tmp_path / "batch",
                            config(api, tmp_path, mode="batch", batch=BatchSettings(poll_interval=0.01),
                                   cache_path=tmp_path / "batch.sqlite"))
    assert batch["cost"]["by_judge"][0]["mode"] == "batch"
    assert batch["cost"]["by_mode_usd"]["batch"] == pytest.approx(live["cost"]["by_mode_usd"]["live"] / 2)
    assert batch["cost"]["by_mode_usd"]["live"] == 0


def test_unknown_model_is_priced_unknown_never_zero(tmp_path: Path) -> None:
    with LoopbackServer(lambda body: Reply(text=ANSWER)) as server:
        results = judge_files([inputs(tmp_path)], ["factuality"], tmp_path / "out",
                              config(server, tmp_path, judge_model="my-local-judge"))
    assert results["cost"]["total_usd"] == "unknown"
    assert results["cost"]["by_judge"][0]["usd"] == "unknown"
    assert results["cost"]["by_judge"][0]["prompt_tokens"] > 0


def test_budget_exceeded_makes_no_request(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with LoopbackServer(lambda body: Reply(text=ANSWER)) as server:
        argv = ["judge", "--input", str(inputs(tmp_path)), "--judges", "factuality", "--output", str(tmp_path / "out"),
                "--base-url", server.base_url, "--cache-dir", str(tmp_path), "--prices", str(prices(tmp_path)),
                "--no-progress", "--budget", "0.05"]
        assert main(argv) != 0
        assert server.request_count == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs up to $0.13" in err[0] and "--budget $0.0500" in err[0], err
    assert "Traceback" not in err[0] and not (tmp_path / "out" / "samples.jsonl").exists()


def test_budget_within_stays_within_even_when_reasks_add_requests(tmp_path: Path) -> None:
    # 4 requests of at most 512 answer tokens at $60/M: the estimate is ~$0.14 with the prompts. The
    # first answers of items 1-3 are unreadable and 500 tokens long (~$0.032 each): spent ~$0.097,
    # so no re-ask (each up to ~$0.057 with the longer conversation) fits under $0.15 any more.
    unreadable = "hmm " * 500

    def script(body: dict[str, Any]) -> Reply:
        first_of_1_to_3 = len(body["messages"]) == 1 and "Answer 0." not in body["messages"][0]["content"]
        return Reply(text=unreadable if first_of_1_to_3 else ANSWER)

    with LoopbackServer(script) as server:
        results = judge_files([inputs(tmp_path)], ["factuality"], tmp_path / "out",
                              config(server, tmp_path, budget=0.15))
        sent = server.request_count
    cost = results["cost"]
    assert 0.12 < cost["estimate_usd"] <= 0.15
    assert 0.09 < cost["new_usd"] <= 0.15  # never past the budget...
    statuses = [j["factuality"] for j in [json.loads(line)["judgments"] for line in
                                         (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]]
    refused = [j for j in statuses if "--budget" in (j.get("error") or "")]
    assert len(refused) == 3 and sent == 4  # ...because re-asks that could pass it were not sent
    assert statuses[0]["status"] == "scored"


def test_budget_needs_a_price(tmp_path: Path) -> None:
    with LoopbackServer(lambda body: Reply(text=ANSWER)) as server:
        with pytest.raises(EFTEvalError, match="has no price"):
            judge_files([inputs(tmp_path)], ["factuality"], tmp_path / "out",
                        config(server, tmp_path, judge_model="my-local-judge", budget=1.0))
        assert server.request_count == 0


def test_shipped_price_table_loads_and_bad_tables_name_the_field(tmp_path: Path) -> None:
    table = load_prices(SHIPPED_PRICES)
    assert table.price("gpt-4-0613", "live").input == pytest.approx(30e-6)
    assert table.price("gpt-4o-2024-08-06", "batch").output == pytest.approx(5e-6)
    assert table.price("no-such-model", "live") is None
    with pytest.raises(EFTEvalError, match=r"prices.yaml: field 'models.m.output' must be a non-negative number"):
        load_prices(prices(tmp_path, "models:\n  m: {input: 1, output: -2}\n"))
    with pytest.raises(EFTEvalError, match=r"field 'models.m.inptu' is not a price field"):
        load_prices(prices(tmp_path, "models:\n  m: {input: 1, output: 2, inptu: 3}\n"))


@pytest.mark.parametrize("budget", [None, "1"])
def test_a_paid_judges_estimate_is_printed_before_any_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture,
                                                              budget: str | None) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    caplog.set_level(logging.INFO)
    said_before: list[bool] = []

    def script(body: dict[str, Any]) -> Reply:
        said_before.append("judge cost estimate" in caplog.text)
        return Reply(text=ANSWER)

    with LoopbackServer(script) as server:
        argv = ["judge", "--input", str(inputs(tmp_path)), "--judges", "factuality", "--output", str(tmp_path / "out"),
                "--base-url", server.base_url, "--cache-dir", str(tmp_path), "--prices", str(prices(tmp_path)),
                "--no-progress", *(["--budget", budget] if budget else [])]
        assert main(argv) == 0
        estimate = [r.getMessage() for r in caplog.records if "judge cost estimate" in r.getMessage()]
        # 4 requests, each with its answer limit of tokens at $60/M: the same worst case --budget checks.
        assert len(estimate) == 1 and re.match(r"judge cost estimate: at most \$0\.1\d+ for 4 requests", estimate[0])
        assert ("within --budget $1.0000" in estimate[0]) == (budget is not None)
        assert said_before == [True] * 4
        caplog.clear()
        assert main(argv) == 0  # all in the cache: nothing to pay, nothing estimated
        assert "judge cost estimate" not in caplog.text
