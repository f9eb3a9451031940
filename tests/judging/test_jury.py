"""A jury of judge models (`--judge-model a,b,c`): three loopback models with known answers, each
model judged, cached and priced on its own, the jury's score their aggregation, and their agreement
equal to the `krippendorff` package's alpha on the same matrix."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pytest

from eft_eval.cli import main
from eft_eval.judging import BatchSettings, JudgeConfig, judge_files
from eft_eval.judging._prices import load_prices
from eft_eval.testing import BatchAPIFake, LoopbackServer, Reply

N = 12
JURY = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-nano")  # priced in the shipped prices.yaml


def helpfulness(model: str, i: int) -> float:
    return {"gpt-4o": 10 + 5 * i, "gpt-4o-mini": 12 + 5 * i, "gpt-4.1-nano": 5 + 5 * i + 4 * (i % 3)}[model]


def factuality(model: str, i: int) -> int:
    return (i + 1) % 3 if model == "gpt-4.1-nano" and i % 2 == 0 else i % 3


def text_for(model: str, prompt: str) -> str:
    """Each model's known answer: the item number is in the response, the judge in its prompt."""
    i = int(prompt.split("Answer number ")[1].split(".")[0])
    score = factuality(model, i) if "inaccurac" in prompt.lower() else helpfulness(model, i)
    return f"Reason: model {model} on item {i}.\nScore: {score}"


def script(body: dict[str, Any]) -> Reply:
    return Reply(text=text_for(body["model"], body["messages"][0]["content"]))


def write_inputs(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"query": f"Q{i}?", "response": f"Answer number {i}."}) + "\n"
                            for i in range(N)))
    return path


def config(base_url: str, cache: Path, models: tuple[str, ...] = JURY, **settings: Any) -> JudgeConfig:
    return JudgeConfig(base_url=base_url, api_key="sk-test", cache_path=cache, progress=False,
                       judge_model=",".join(models), **settings)


def rows_of(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def jury_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jury")


@pytest.fixture(scope="module")
def judged(jury_folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
    tmp = jury_folder
    with LoopbackServer(script) as server:
        results = judge_files([write_inputs(tmp)], ["helpfulness", "factuality"], tmp / "out",
                              config(server.base_url, tmp / "c.sqlite"))
        requests = list(server.requests)
    return results, rows_of(tmp / "out"), requests


def test_each_model_is_asked_and_kept_and_the_score_is_the_jurys_mean(judged: Any) -> None:
    results, rows, requests = judged
    assert sorted(body["model"] for body in requests) == sorted(JURY * N * 2)
    for i, row in enumerate(rows):
        judgment = row["judgments"]["helpfulness"]
        assert list(judgment["models"]) == list(JURY)
        assert {m: j["score"] for m, j in judgment["models"].items()} == {m: helpfulness(m, i) for m in JURY}
        assert all(j["judge_model"] == m for m, j in judgment["models"].items())
        assert judgment["score"] == pytest.approx(statistics.mean(helpfulness(m, i) for m in JURY))
        assert judgment["jury_aggregation"] == "mean" and judgment["judge_model"] == ",".join(JURY)
    assert results["config"]["judge_models"]["helpfulness"] == ",".join(JURY)


def test_per_model_and_jury_estimates_are_exact(judged: Any) -> None:
    results, _, _ = judged
    for name, known in (("helpfulness", helpfulness), ("factuality", factuality)):
        summary = results["judges"][name]
        jury_scores = [statistics.mean(known(m, i) for m in JURY) for i in range(N)]
        assert summary["mean"] == pytest.approx(statistics.mean(jury_scores))
        assert summary["stderr"] == pytest.approx(statistics.stdev(jury_scores) / N**0.5)
        for model in JURY:
            own = [known(model, i) for i in range(N)]
            estimate = summary["jury"]["models"][model]
            assert estimate["mean"] == pytest.approx(statistics.mean(own))
            assert estimate["stderr"] == pytest.approx(statistics.stdev(own) / N**0.5)
            assert estimate["n_scored"] == N


def test_alpha_equals_the_krippendorff_package_on_the_same_matrix(judged: Any) -> None:
    results, _, _ = judged
    for name, known, level in (("helpfulness", helpfulness, "interval"), ("factuality", factuality, "ordinal")):
        matrix = np.array([[known(m, i) for i in range(N)] for m in JURY], dtype=float)
        agreement = results["judges"][name]["jury"]["agreement"]
        assert agreement["level"] == level and agreement["n_models"] == 3
        alpha = agreement["krippendorff_alpha"]
        expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
        assert alpha["value"] == pytest.approx(expected, rel=1e-12)
        assert alpha["ci_low"] < alpha["value"] < alpha["ci_high"] and alpha["n"] == N


def test_each_model_is_priced_in_the_ledger(judged: Any) -> None:
    results, _, requests = judged
    prices = load_prices(None)
    rows = {(row["judge"], row["judge_model"]): row for row in results["cost"]["by_judge"]}
    assert set(rows) == {(judge, model) for judge in ("helpfulness", "factuality") for model in JURY}
    total = 0.0
    for (judge, model), row in rows.items():
        asked = [body for body in requests if body["model"] == model
                 and ("inaccurac" in body["messages"][0]["content"].lower()) == (judge == "factuality")]
        prompt = sum(len(str(m["content"]).split()) for body in asked for m in body["messages"])
        completion = sum(len(text_for(model, body["messages"][0]["content"]).split()) for body in asked)
        price = prices.price(model, "live")
        assert price is not None
        usd = prompt * price.input + completion * price.output  # per token
        assert row["requests"] == N and row["usd"] == pytest.approx(usd, abs=1e-6)  # the ledger writes micro-dollars
        total += usd
    assert results["cost"]["total_usd"] == pytest.approx(total, abs=1e-6)


def test_a_rerun_asks_nothing_and_a_new_member_only_its_own_questions(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path)
    with LoopbackServer(script) as server:
        first = judge_files([inputs], ["helpfulness"], tmp_path / "two",
                            config(server.base_url, tmp_path / "c.sqlite", JURY[:2]))
        assert server.request_count == 2 * N
        server.reset_counts()
        judge_files([inputs], ["helpfulness"], tmp_path / "again", config(server.base_url, tmp_path / "c.sqlite",
                                                                           JURY[:2]))
        assert server.request_count == 0  # every member's answers come from the cache
        judge_files([inputs], ["helpfulness"], tmp_path / "three", config(server.base_url, tmp_path / "c.sqlite"))
        assert {body["model"] for body in server.requests} == {JURY[2]} and server.request_count == N
        server.reset_counts()
        judge_files([inputs], ["helpfulness"], tmp_path / "alone",
                    config(server.base_url, tmp_path / "c.sqlite", JURY[:1]))
        assert server.request_count == 0  # a one-model run reuses that member's answers
    assert (tmp_path / "again" / "samples.jsonl").read_text() == (tmp_path / "two" / "samples.jsonl").read_text()
    assert first["judges"]["helpfulness"]["jury"]["agreement"]["n_models"] == 2
    alone = rows_of(tmp_path / "alone")[3]["judgments"]["helpfulness"]
    assert "models" not in alone and alone["score"] == helpfulness(JURY[0], 3)  # one model: no jury fields


def test_jury_aggregation_flag_and_samples(tmp_path: Path) -> None:
    with LoopbackServer(script) as server:
        judge_files([write_inputs(tmp_path)], ["helpfulness"], tmp_path / "out",
                    config(server.base_url, tmp_path / "c.sqlite", jury_aggregation="median", samples=2))
        seeds = sorted({str(body.get("seed")) for body in server.requests})
    assert seeds == ["1", "None"] and server.request_count == 2 * 3 * N
    for i, row in enumerate(rows_of(tmp_path / "out")):
        judgment = row["judgments"]["helpfulness"]
        assert judgment["score"] == statistics.median(helpfulness(m, i) for m in JURY)
        assert judgment["jury_aggregation"] == "median"
        assert all(len(j["samples"]) == 2 for j in judgment["models"].values())  # each member's K samples


def answer(body: dict[str, Any]) -> str:
    return text_for(body["model"], body["messages"][0]["content"])


def test_batch_jury_equals_live_jury(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path)
    fast = BatchSettings(poll_interval=0.01)
    with BatchAPIFake(answer) as api:
        judge_files([inputs], ["factuality"], tmp_path / "live", config(api.base_url, tmp_path / "live.sqlite"))
        assert api.created_batches == [] and len(api.live_requests) == 3 * N
        judge_files([inputs], ["factuality"], tmp_path / "batch",
                    config(api.base_url, tmp_path / "batch.sqlite", mode="batch", batch=fast))
        assert len(api.live_requests) == 3 * N and api.created_batches  # nothing more asked live
        lines = sum(api.batches[b]["request_counts"]["total"] for b in api.created_batches)
    assert lines == 3 * N
    live = json.loads((tmp_path / "live" / "results.json").read_text())
    batch = json.loads((tmp_path / "batch" / "results.json").read_text())
    assert (tmp_path / "batch" / "samples.jsonl").read_text() == (tmp_path / "live" / "samples.jsonl").read_text()
    assert batch["judges"] == live["judges"]
    assert {row["mode"] for row in batch["cost"]["by_judge"]} == {"batch"}
    assert batch["cost"]["total_usd"] == pytest.approx(live["cost"]["total_usd"] / 2, abs=1e-6)  # batch_discount


def test_cli_jury_and_bad_aggregation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    inputs = write_inputs(tmp_path)
    with LoopbackServer(script) as server:
        argv = ["judge", "--input", str(inputs), "--judges", "factuality", "--base-url", server.base_url,
                "--judge-model", " gpt-4o, gpt-4o-mini ,gpt-4.1-nano", "--output", str(tmp_path / "out")]
        assert main([*argv, "--jury-aggregation", "median"]) == 0
        assert main([*argv, "--jury-aggregation", "loudest"]) != 0
        assert main([*argv[:-2], "--judge-model", "gpt-4o,,x", "--output", str(tmp_path / "o2")]) != 0
    err = capsys.readouterr().err
    assert "unknown --jury-aggregation 'loudest'" in err and "an empty model name in the jury" in err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["config"]["judge_models"] == {"factuality": ",".join(JURY)}
    assert results["config"]["jury"] == {"models": list(JURY), "aggregation": "median"}
    row = rows_of(tmp_path / "out")[4]["judgments"]["factuality"]
    assert list(row["models"]) == list(JURY)
    assert row["score"] == statistics.median(factuality(m, 4) for m in JURY)


def test_the_report_shows_each_models_mean_and_the_jurys_alpha(judged: Any, jury_folder: Path) -> None:
    import html

    results, _, _ = judged
    out = jury_folder / "report.html"
    assert main(["report", str(jury_folder / "out"), "--html", str(out)]) == 0
    page = html.unescape(out.read_text())
    assert "Jury: each model's mean; agreement" in page
    for name, level in (("helpfulness", "interval"), ("factuality", "ordinal")):
        jury = results["judges"][name]["jury"]
        means = ", ".join(f"{m} {jury['models'][m]['mean']:.3g}" for m in JURY)
        alpha = jury["agreement"]["krippendorff_alpha"]
        assert (f"{means}; Krippendorff's alpha {alpha['value']:.2f} (95% CI {alpha['ci_low']:.2f}-"
                f"{alpha['ci_high']:.2f}, {level})") in page


def test_analyze_agreement_takes_each_jury_model_against_the_jury(judged: Any, jury_folder: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from scipy import stats

    run = str(jury_folder / "out")
    for model in JURY:
        out = jury_folder / f"agreement-{model}"
        assert main(["analyze", "agreement", run, run, "--judge", f"helpfulness@{model}", "--judge-b", "helpfulness",
                     "--threshold", "40", "--n-resamples", "200", "-o", str(out)]) == 0
        data = json.loads((out / "agreement.json").read_text())
        own = [helpfulness(model, i) for i in range(N)]
        jury = [statistics.mean(helpfulness(m, i) for m in JURY) for i in range(N)]
        assert data["n_paired"] == N
        assert data["spearman"]["value"] == pytest.approx(stats.spearmanr(own, jury).statistic)
        assert data["agreement"]["value"] == pytest.approx(statistics.mean((a >= 40) == (b >= 40)
                                                                           for a, b in zip(own, jury)))
    capsys.readouterr()
    assert main(["analyze", "agreement", run, run, "--judge", "helpfulness@gpt-5", "--judge-b", "helpfulness",
                 "-o", str(jury_folder / "bad")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "judge 'helpfulness' has no jury model 'gpt-5' (its models here: gpt-4o," in err[0]


def test_the_budget_estimate_prices_each_model(tmp_path: Path) -> None:
    from eft_eval.errors import EFTEvalError
    from eft_eval.judging import CostSettings

    inputs = write_inputs(tmp_path)
    estimates = {}
    with LoopbackServer(script) as server:
        for models in [(m,) for m in JURY] + [JURY]:
            name = "-".join(models)
            results = judge_files([inputs], ["harm"], tmp_path / name,
                                  config(server.base_url, tmp_path / f"{name}.sqlite", models,
                                         cost=CostSettings(budget=100.0)))
            estimates[models] = results["cost"]["estimate_usd"]
        with pytest.raises(EFTEvalError, match=r"needs up to \$.*more than --budget"):
            judge_files([inputs], ["harm"], tmp_path / "poor", config(
                server.base_url, tmp_path / "poor.sqlite", cost=CostSettings(budget=estimates[JURY] * 0.99)))
    assert all(estimates[(m,)] > 0 for m in JURY)
    assert estimates[JURY] == pytest.approx(sum(estimates[(m,)] for m in JURY), abs=1e-6)
    # the cheapest model alone fits a budget the jury does not
    assert min(estimates[(m,)] for m in JURY) < estimates[JURY] * 0.99


def test_each_jury_model_against_human_labels(judged: Any, jury_folder: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    labels = jury_folder / "labels.jsonl"
    labels.write_text("".join(json.dumps({"doc_id": i, "label": 20 + 5 * i}) + "\n" for i in range(0, N, 2)))
    capsys.readouterr()
    for model in JURY:
        out = jury_folder / f"calibrated-{model}"
        assert main(["analyze", "calibrated", str(jury_folder / "out"), "--labels", str(labels),
                     "--judge", f"helpfulness@{model}", "--output", str(out)]) == 0
        data = json.loads((out / "calibrated.json").read_text())
        [figures] = data["judges"].values() if isinstance(data["judges"], dict) else data["judges"]
        assert figures["judge_only"]["value"] == pytest.approx(statistics.mean(helpfulness(model, i) for i in range(N)))
        assert figures["human_only"]["value"] == pytest.approx(statistics.mean(20 + 5 * i for i in range(0, N, 2)))
