"""`--judge-mode batch` against a loopback fake of OpenAI's Batch API (`eft_eval.testing.BatchAPIFake`).

The fake stands in for OpenAI's own servers only; the client, the engine, the cache and the CLI
are the real ones. A batch run must end with the same samples.jsonl as a live run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from eft_eval.cli import main
from eft_eval.errors import EFTEvalError
from eft_eval.judging import BatchSettings, JudgeConfig, judge_files
from eft_eval.testing import BatchAPIFake


def answer(body: dict[str, Any]) -> str:
    """A deterministic judge: the score depends on the response, so swapped answers would show."""
    text = body["messages"][0]["content"]
    return f"Reason: looked at {len(text)} characters.\nScore: {len(text) % 4}"


def write_inputs(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"query": f"Question {i}?", "response": f"Answer {'x' * i}."}) + "\n"
                            for i in range(n)))
    return path


def fast_polls(**limits: Any) -> BatchSettings:
    return BatchSettings(poll_interval=0.01, **limits)


def config(api: BatchAPIFake, cache: Path, **settings: Any) -> JudgeConfig:
    settings.setdefault("batch", fast_polls())
    return JudgeConfig(base_url=api.base_url, api_key="sk-fake", cache_path=cache, progress=False, **settings)


def live_samples(tmp_path: Path, inputs: Path, judges: list[str]) -> str:
    with BatchAPIFake(answer) as api:
        judge_files([inputs], judges, tmp_path / "live", config(api, tmp_path / "live.sqlite"))
        assert api.created_batches == []
    return (tmp_path / "live" / "samples.jsonl").read_text()


def test_batch_run_equals_live_run_and_splits_at_the_request_limit(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 7)
    expected = live_samples(tmp_path, inputs, ["factuality", "helpfulness"])
    with BatchAPIFake(answer, per_poll=4) as api:
        judge_files([inputs], ["factuality", "helpfulness"], tmp_path / "batch",
                    config(api, tmp_path / "batch.sqlite", mode="batch", batch=fast_polls(max_requests=5)))
        assert api.live_requests == []  # every answer came from a batch
        assert len(api.created_batches) == 3  # 14 requests, at most 5 per file
        sizes = sorted(api.batches[b]["request_counts"]["total"] for b in api.created_batches)
        assert sizes == [4, 5, 5]
    assert (tmp_path / "batch" / "samples.jsonl").read_text() == expected
    state = json.loads((tmp_path / "batch" / "judge-batches.json").read_text())
    assert {entry["status"] for entry in state["batches"]} == {"collected"}


def test_batch_files_respect_the_byte_limit(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 6)
    with BatchAPIFake(answer) as api:
        judge_files([inputs], ["factuality"], tmp_path / "out",
                    config(api, tmp_path / "c.sqlite", mode="batch", batch=fast_polls(max_bytes=2500)))
        uploads = [api.files[api.batches[b]["input_file_id"]]["bytes"] for b in api.created_batches]
    assert len(uploads) > 1 and max(uploads) <= 2500


def test_line_errors_and_unreadable_answers_are_asked_again_in_a_follow_up_batch(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 5)
    expected = live_samples(tmp_path, inputs, ["factuality"])
    failed_once: set[str] = set()

    def line_error(body: dict[str, Any]) -> dict[str, Any] | None:
        text = body["messages"][0]["content"]
        if "Answer x." in text and text not in failed_once:  # item 1: a server error, once
            failed_once.add(text)
            return {"code": "server_error", "message": "The server had an error processing your request."}
        return None

    garbled: set[str] = set()

    def flaky_answer(body: dict[str, Any]) -> str:
        text = body["messages"][0]["content"]
        if "Answer xxx." in text and text not in garbled:  # item 3: unreadable, once
            garbled.add(text)
            return "I would rather not say."
        return answer(body)

    with BatchAPIFake(flaky_answer, line_error=line_error) as api:
        judge_files([inputs], ["factuality"], tmp_path / "batch", config(api, tmp_path / "b.sqlite", mode="batch"))
        assert len(api.created_batches) == 2  # the first, and one follow-up for the two items
        assert api.batches[api.created_batches[1]]["request_counts"]["total"] == 2
        assert api.live_requests == []
    rows = [json.loads(line) for line in (tmp_path / "batch" / "samples.jsonl").read_text().splitlines()]
    assert [row["judgments"]["factuality"]["status"] for row in rows] == ["scored"] * 5
    assert rows[3]["judgments"]["factuality"]["attempts"] == 2  # re-asked after the unreadable answer
    # The line that failed was asked again with the same request: same answer as live.
    assert rows[1] == json.loads(expected.splitlines()[1])


def test_an_expired_batch_is_finished_in_a_follow_up_batch(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 6)
    expected = live_samples(tmp_path, inputs, ["factuality"])
    with BatchAPIFake(answer, per_poll=2, expire_after_polls=1) as api:
        judge_files([inputs], ["factuality"], tmp_path / "batch",
                    config(api, tmp_path / "b.sqlite", mode="batch", batch=fast_polls(max_requests=10)))
        first = api.batches[api.created_batches[0]]
        assert first["status"] == "expired" and first["request_counts"] == {"total": 6, "completed": 2, "failed": 4}
        assert len(api.created_batches) >= 2
    assert (tmp_path / "batch" / "samples.jsonl").read_text() == expected


def test_a_batch_refused_at_validation_fails_its_judgments_once_without_resubmitting(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 3)
    with BatchAPIFake(answer, refuse="The model `gpt-4-0613` does not support batch.") as api:
        with pytest.raises(EFTEvalError, match="every judgment failed"):
            judge_files([inputs], ["factuality"], tmp_path / "out", config(api, tmp_path / "c.sqlite", mode="batch"))
        assert len(api.created_batches) == 1
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    errors = {row["judgments"]["factuality"]["error"] for row in rows}
    assert errors == {f"batch: batch {api.created_batches[0]} failed: The model `gpt-4-0613` does not support batch."}


def test_batch_fallback_live_asks_unreadable_answers_live(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 3)
    seen: set[str] = set()

    def once_unreadable(body: dict[str, Any]) -> str:
        text = body["messages"][0]["content"]
        if "Answer x." in text and text not in seen:
            seen.add(text)
            return "no idea"
        return answer(body)

    with BatchAPIFake(once_unreadable) as api:
        judge_files([inputs], ["factuality"], tmp_path / "out",
                    config(api, tmp_path / "c.sqlite", mode="batch", batch=fast_polls(fallback="live")))
        assert len(api.created_batches) == 1
        assert len(api.live_requests) == 1 and api.live_requests[0]["messages"][1]["role"] == "assistant"


def _cli(inputs: Path, out: Path, base_url: str, cache: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "eft_eval.cli", "judge", "--input", str(inputs), "--judges", "factuality",
            "--output", str(out), "--base-url", base_url, "--cache-dir", str(cache), "--no-progress",
            "--judge-mode", "batch", "--batch-poll-interval", "0.05", *extra]


def _wait_for_submitted(state: Path, process: subprocess.Popen[bytes], api: BatchAPIFake) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        if state.exists():
            entries = json.loads(state.read_text())["batches"]
            if entries and entries[0]["batch_id"] and api.polls >= 3:  # polling, not yet done
                return str(entries[0]["batch_id"])
        time.sleep(0.05)
    raise AssertionError("no batch was submitted")


@pytest.mark.slow
def test_sigkill_while_polling_then_rerun_reattaches_to_the_same_batch(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 8)
    expected = live_samples(tmp_path, inputs, ["factuality"])
    out = tmp_path / "batch"
    env = {**os.environ, "OPENAI_API_KEY": "sk-fake", "HF_HUB_OFFLINE": "1"}
    with BatchAPIFake(answer, per_poll=1) as api:  # one answer per poll: ~10 polls in all
        first = subprocess.Popen(_cli(inputs, out, api.base_url, tmp_path / "cache"), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        batch_id = _wait_for_submitted(out / "judge-batches.json", first, api)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=60) == -signal.SIGKILL
        assert not (out / "samples.jsonl").exists()

        second = subprocess.run(_cli(inputs, out, api.base_url, tmp_path / "cache"), env=env, check=False,
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-3000:]
        assert f"re-attaching to batch {batch_id}" in second.stderr
        assert api.created_batches == [batch_id]  # exactly one batch created (and paid for)
        assert api.live_requests == []
    assert (out / "samples.jsonl").read_text() == expected


def test_cancel_cancels_the_recorded_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 3)
    out = tmp_path / "batch"
    env = {**os.environ, "OPENAI_API_KEY": "sk-fake", "HF_HUB_OFFLINE": "1"}
    with BatchAPIFake(answer, per_poll=0) as api:  # never finishes
        first = subprocess.Popen(_cli(inputs, out, api.base_url, tmp_path / "cache"), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        batch_id = _wait_for_submitted(out / "judge-batches.json", first, api)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        argv = _cli(inputs, out, api.base_url, tmp_path / "cache", "--cancel")[3:]
        assert main(argv) == 0
        assert api.cancelled == [batch_id]
        assert api.created_batches == [batch_id]
    assert f"cancelled 1 batch(es): {batch_id}" in capsys.readouterr().out
    assert json.loads((out / "judge-batches.json").read_text())["batches"][0]["status"] == "cancelled"


def test_cancel_without_batch_mode_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 1)
    argv = ["judge", "--input", str(inputs), "--output", str(tmp_path / "o"), "--base-url", "http://127.0.0.1:9/v1",
            "--cancel"]
    assert main(argv) != 0
    assert "--cancel cancels Batch API batches" in capsys.readouterr().err


def test_run_judges_through_the_batch_api_like_live(tiny_family: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline_helpers import run_args

    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    with BatchAPIFake(answer) as api:
        assert main([*run_args(tiny_family, tmp_path / "live", api.base_url), "--judges", "factuality",
                     "--no-progress", "--no-html"]) == 0
        assert main([*run_args(tiny_family, tmp_path / "batch", api.base_url), "--judges", "factuality",
                     "--no-progress", "--no-html", "--judge-mode", "batch", "--batch-poll-interval", "0.01"]) == 0
        assert len(api.created_batches) == 1 and len(api.live_requests) == 4
    live, batch = ([json.loads(line) for line in (tmp_path / run / "samples.jsonl").read_text().splitlines()]
                   for run in ("live", "batch"))
    assert [row["judgments"] for row in batch] == [row["judgments"] for row in live]
    results = json.loads((tmp_path / "batch" / "results.json").read_text())
    assert results["judge_config"]["mode"] == "batch"
    assert results["cost"]["by_judge"][0]["mode"] == "batch" and results["cost"]["by_judge"][0]["requests"] == 4
    assert json.loads((tmp_path / "batch" / "judge-batches.json").read_text())["batches"][0]["status"] == "collected"


def test_judge_samples_in_batch_mode_equal_live_and_a_request_over_the_byte_limit_fails_alone(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 4)
    with BatchAPIFake(answer) as api:
        judge_files([inputs], ["factuality"], tmp_path / "live", config(api, tmp_path / "l.sqlite", samples=2))
        judge_files([inputs], ["factuality"], tmp_path / "batch",
                    config(api, tmp_path / "b.sqlite", samples=2, mode="batch"))
        assert len(api.created_batches) == 1 and api.batches[api.created_batches[0]]["request_counts"]["total"] == 8
    assert (tmp_path / "batch" / "samples.jsonl").read_text() == (tmp_path / "live" / "samples.jsonl").read_text()

    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"query": "Q?", "response": "x" * 5000}) + "\n"
                   + json.dumps({"query": "Q?", "response": "y"}) + "\n")
    small_files = fast_polls(max_bytes=3000)
    with BatchAPIFake(answer) as api:
        judge_files([big], ["factuality"], tmp_path / "big", config(api, tmp_path / "c.sqlite", mode="batch",
                                                                     batch=small_files))
    rows = [json.loads(line)["judgments"]["factuality"]
            for line in (tmp_path / "big" / "samples.jsonl").read_text().splitlines()]
    assert rows[0]["status"] == "failed" and "over the batch file limit 3000" in rows[0]["error"]
    assert rows[1]["status"] == "scored"


def test_a_corrupt_batch_record_is_one_clear_line(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in.jsonl", 1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "judge-batches.json").write_text("{not json")
    with BatchAPIFake(answer) as api:
        with pytest.raises(EFTEvalError, match=r"judge-batches.json: cannot read the batch record .*delete it"):
            judge_files([inputs], ["factuality"], tmp_path / "out", config(api, tmp_path / "c.sqlite", mode="batch"))
        assert api.created_batches == []


def test_run_cancel_generates_nothing(tiny_family: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline_helpers import run_args

    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    with BatchAPIFake(answer) as api:
        assert main([*run_args(tiny_family, tmp_path / "run", api.base_url), "--no-progress", "--no-html",
                     "--judge-mode", "batch", "--cancel"]) == 0
        assert api.created_batches == [] and api.live_requests == []
    assert "cancelled 0 batch(es)" in capsys.readouterr().out
    assert not (tmp_path / "run" / "samples.jsonl").exists() and not (tmp_path / "run" / "generations.jsonl").exists()


def test_cancel_finds_a_batch_created_after_the_last_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Killed between `batches.create` and writing its id down: the record says only "uploaded"."""
    import openai

    inputs = write_inputs(tmp_path / "in.jsonl", 1)
    out = tmp_path / "batch"
    out.mkdir()
    with BatchAPIFake(answer, per_poll=0) as api:
        client = openai.OpenAI(api_key="sk-fake", base_url=api.base_url)
        line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                           "body": {"model": "m", "messages": []}}).encode() + b"\n"
        uploaded = client.files.create(file=("x.jsonl", line), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        (out / "judge-batches.json").write_text(json.dumps({"batches": [
            {"input_file_id": uploaded.id, "batch_id": None, "requests": 1, "status": "uploaded", "created": 0}]}))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        assert main(_cli(inputs, out, api.base_url, tmp_path / "cache", "--cancel")[3:]) == 0
        assert api.cancelled == [batch.id]
    assert f"cancelled 1 batch(es): {batch.id}" in capsys.readouterr().out
    assert json.loads((out / "judge-batches.json").read_text())["batches"][0]["status"] == "cancelled"
