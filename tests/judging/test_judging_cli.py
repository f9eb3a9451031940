"""`eft-eval judge` and `eft-eval bench judge` end to end against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from judging_helpers import ANSWERS, answer, write_jsonl

from eft_eval.cli import main
from eft_eval.testing import LoopbackServer

SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"
def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_judge_command_writes_samples_and_results_and_never_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    caplog.set_level(logging.DEBUG)
    records = [{"query": f"Question {i}?", "response": f"Answer {i}.", "id": f"row-{i}"} for i in range(6)]
    source = write_jsonl(tmp_path / "responses.jsonl", records)
    out = tmp_path / "out"
    with LoopbackServer(answer) as server:
        argv = ["-v", "judge", "--input", str(source), "--judges", "factuality,helpfulness", "--output", str(out),
                "--base-url", server.base_url, "--no-progress", "--model-label", "eft-up"]
        assert main(argv) == 0
        assert server.request_count == 12
        assert set(server.authorizations) == {f"Bearer {SECRET}"}  # the key was used...
        first_samples = (out / "samples.jsonl").read_text()

        server.reset_counts()
        assert main(argv) == 0  # ...and a re-run resumes from the cache
        assert server.request_count == 0
        assert (out / "samples.jsonl").read_text() == first_samples

    rows = read_jsonl(out / "samples.jsonl")
    assert [row["id"] for row in rows] == [r["id"] for r in records]  # extra keys kept, order kept
    for i, row in enumerate(rows):
        assert (row["doc_id"], row["task"], row["model"]) == (i, "judge", "eft-up")
        assert (row["query"], row["response"]) == (records[i]["query"], records[i]["response"])
        factuality = row["judgments"]["factuality"]
        assert factuality["status"] == "scored" and factuality["score"] == 1.0
        assert factuality["reason"] == "One wrong date." and factuality["raw"] == ANSWERS["Count the number"]
        assert factuality["judge_model"] == "gpt-4-0613" and factuality["attempts"] == 1
        assert row["judgments"]["helpfulness"]["score"] == 70.0

    results = json.loads((out / "results.json").read_text())
    assert results["judges"]["factuality"]["mean"] == 1.0 and results["judges"]["helpfulness"]["mean"] == 70.0
    for name in ("factuality", "helpfulness"):
        summary = results["judges"][name]
        assert (summary["n_scored"], summary["n_abstained"], summary["n_failed"], summary["stderr"]) == (6, 0, 0, 0.0)
    assert results["n_items"] == 6 and results["config"]["base_url"] == server.base_url

    # the key is in no output file, cache file, log record or console output
    cache_files = list((tmp_path / "cache").iterdir())
    assert any(path.name == "judge-cache.sqlite" for path in cache_files)
    captured = capsys.readouterr()
    assert caplog.records, "the run logged (at debug level)"
    for path in [*out.iterdir(), *cache_files]:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in captured.out + captured.err + caplog.text


def test_judge_command_reads_lm_eval_log_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    sample = {
        "doc_id": 3, "doc": {"query": "Why is the sky blue?", "chosen": "..."}, "target": "",
        "arguments": {"gen_args_0": {"arg_0": "\n\nHuman: Why is the sky blue?\n\nAssistant:",
                                     "arg_1": {"until": ["\n\n"]}}},
        "resps": [["Because of Rayleigh scattering."]], "filtered_resps": ["Because of Rayleigh scattering."],
        "filter": "none", "metrics": [],
    }
    no_query_field = {**sample, "doc_id": 4, "doc": {"title": "x"}}
    source = write_jsonl(tmp_path / "lm" / "base__eft" / "samples_hh_demo_2026-11-23T19-00-00.123456.jsonl",
                         [sample, no_query_field])
    with LoopbackServer(answer) as server:
        assert main(["judge", "--input", str(source), "--judges", "factuality", "--output", str(tmp_path / "out"),
                     "--base-url", server.base_url, "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                     "--show-query"]) == 0
        asked = [body["messages"][0]["content"] for body in server.requests]
    rows = read_jsonl(tmp_path / "out" / "samples.jsonl")
    assert [(r["doc_id"], r["task"], r["model"]) for r in rows] == [(3, "hh_demo", "base__eft"),
                                                                    (4, "hh_demo", "base__eft")]
    assert rows[0]["query"] == "Why is the sky blue?"  # from the doc
    assert rows[1]["query"] == "\n\nHuman: Why is the sky blue?\n\nAssistant:"  # from the arguments
    assert rows[0]["response"] == "Because of Rayleigh scattering."
    assert rows[0]["judgments"]["factuality"]["status"] == "scored"
    assert all("QUERY: " in prompt and "RESPONSE: Because of Rayleigh scattering." in prompt for prompt in asked)


def test_judge_command_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"query": "q", "response": "r"}])
    base = ["judge", "--input", str(source), "--output", str(tmp_path / "out"), "--no-progress",
            "--cache-dir", str(tmp_path / "cache")]

    assert main([*base, "--judges", "helpfullness"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'helpfullness'" in err and "helpfulness" in err and "factuality" in err

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main([*base, "--judges", "factuality"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "OPENAI_API_KEY" in err and "--backend local" in err

    bad = write_jsonl(tmp_path / "bad.jsonl", [{"query": "q", "response": "r"}, {"prompt": "q"}])
    assert main([*base[:2], str(bad), *base[3:], "--judges", "factuality"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{bad}:2" in err and "'query'" in err


@pytest.mark.slow
def test_bench_judge_reports_a_speedup_and_a_free_cached_rerun(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "judge", "--json", "--n", "24", "--latency", "0.2", "--concurrency", "8",
                 "--scaling-n", "40", "--scaling-repeats", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    # The scaling table: 0 and 50 ms x 16, 64, 256 in flight, against a server process.
    assert [(row["latency_ms"], row["concurrency"]) for row in report["scaling"]] == [
        (0, 16), (0, 64), (0, 256), (50, 16), (50, 64), (50, 256)]
    assert all(row["scored"] == 40 and row["judgments_per_s"] > 0 and row["client_cpu_ms_per_judgment"] > 0
               and len(row["judgments_per_s_runs"]) == 2 for row in report["scaling"])
    assert (set(report["throughput_non_decreasing"]) == set(report["median_throughput_non_decreasing"])
            == {"0ms", "50ms"})
    assert "max_client_cpu_ms_at_256" in report and report["scaling_repeats"] == 2
    for key in ("sequential_s", "concurrent_s", "speedup", "cached_rerun_requests", "cached_rerun_s"):
        assert key in report
    assert report["cached_rerun_requests"] == 0 and report["cached_rerun_identical"] is True
    # Overlap, within the limit. (How many overlap depends on how fast a busy machine sends them;
    # test_judging_faults pins the peak at the limit by waiting on a condition.)
    assert 2 <= report["peak_in_flight"] <= 8 and report["scored"] == 24
    assert report["speedup"] == pytest.approx(report["sequential_s"] / report["concurrent_s"], rel=0.02)


def test_the_scaling_verdict_tells_a_fall_from_noise() -> None:
    from eft_eval.bench._judge_scaling import _verdicts

    def rows(*runs: list[float]) -> list[dict]:
        return [{"latency_ms": 0, "concurrency": c, "judgments_per_s": sorted(r)[1], "judgments_per_s_runs": r,
                 "client_cpu_ms_per_judgment": 0.2} for c, r in zip((16, 64, 256), runs)]

    noise = _verdicts(rows([90, 100, 110], [92, 98, 120], [95, 97, 130]))  # medians 100, 98, 97: a flat line
    assert noise["throughput_non_decreasing"] == {"0ms": True}
    assert noise["median_throughput_non_decreasing"] == {"0ms": False}
    fall = _verdicts(rows([90, 100, 110], [92, 98, 120], [40, 89, 130]))  # 89: below every run at 64
    assert fall["throughput_non_decreasing"] == {"0ms": False} and fall["max_client_cpu_ms_at_256"] == 0.2
