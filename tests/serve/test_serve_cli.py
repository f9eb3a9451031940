"""`eft-eval serve` as users run it: the command in a subprocess (SIGTERM drains), lm-eval's own
`local-chat-completions` model against it, and a served EFT model judging for `eft-eval judge`."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from lm_eval_helpers import GEN_DOCS, subprocess_env, write_tasks
from serve_helpers import serve_in_thread, upscaled_spec, wait_for_health

from eft_eval.cli import main
from eft_eval.testing import build_chain_model, free_port

pytestmark = pytest.mark.slow  # real subprocesses and an lm-eval run

KEY = "sk-serve-test-secret-42"


@contextlib.contextmanager
def serve_command(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, Any]]:
    port = free_port()
    command = [sys.executable, "-m", "eft_eval.cli", "serve", *args, "--port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**subprocess_env(), **(env or {})})
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_for_health(base_url, timeout=120, process=process)
            yield base_url, process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def test_sigterm_drains_the_in_flight_stream_then_exits(tiny_family: dict[str, Path], tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    args = ["--model", upscaled_spec(tiny_family), "--served-name", "eft", "--api-key-env", "EFT_SERVE_KEY"]
    with serve_command(args, log, env={"EFT_SERVE_KEY": KEY}) as (base_url, process):
        body = {"model": "eft", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 300,
                "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
        headers = {"authorization": f"Bearer {KEY}"}
        with requests.post(f"{base_url}/v1/chat/completions", json=body, headers=headers, stream=True,
                           timeout=120) as response:
            assert response.status_code == 200
            lines = (line for line in response.iter_lines(decode_unicode=True) if line)
            next(lines), next(lines)  # the role chunk and a first token: the row is decoding
            process.send_signal(signal.SIGTERM)
            rest = list(lines)
        assert rest[-1] == "data: [DONE]"
        usage = json.loads(rest[-2].removeprefix("data: "))["usage"]
        assert usage["completion_tokens"] == 300  # the request was finished, not cut off
        # uvicorn re-raises the signal once it has shut down, as a process killed by SIGTERM exits.
        assert process.wait(60) in (0, -signal.SIGTERM)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{base_url}/health", timeout=5)
    text = log.read_text()
    assert "Waiting for connections to close" in text and "Application shutdown complete" in text
    assert KEY not in text


def test_a_missing_api_key_variable_is_one_line(tiny_family: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    assert main(["serve", "--model", upscaled_spec(tiny_family), "--api-key-env", "NO_SUCH_KEY_VAR"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "eft-eval: error: --api-key-env NO_SUCH_KEY_VAR: that environment variable is not set or empty"


def test_a_busy_port_is_one_line_before_any_loading(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # The model does not exist: the port is checked first, so no weights are loaded for nothing.
        assert main(["serve", "--model", "/no/such/model", "--port", str(port)]) == 2
    assert capsys.readouterr().err.strip() == (f"eft-eval: error: cannot listen on 127.0.0.1:{port}: "
                                               "Address already in "
                                               "use (another server uses it: stop it or choose another --port)")


@pytest.fixture(scope="module")
def eft_model(tiny_family: dict[str, Path]) -> Any:
    from eft_eval.models import EFTModel

    return EFTModel.from_spec(upscaled_spec(tiny_family))


def test_lm_evals_local_chat_completions_model_runs_a_generation_task(
    eft_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tasks = TaskManager(include_path=str(write_tasks(tmp_path / "tasks")))
    with serve_in_thread(eft_model) as server:
        results = lm_eval.simple_evaluate(
            model="local-chat-completions",
            model_args=f"base_url={server.v1}/chat/completions,model=eft,num_concurrent=3,max_retries=1",
            tasks=["tiny_gen"], task_manager=tasks, apply_chat_template=True, log_samples=True, bootstrap_iters=0,
        )
        assert server.engine.batches >= 1
    samples = sorted(results["samples"]["tiny_gen"], key=lambda row: row["doc_id"])
    prompts = [f"Question: {doc['question']}\nAnswer:" for doc in GEN_DOCS]
    expected = eft_model.generate(prompts, max_new_tokens=8, stop=["\n", "?"])
    assert [row["resps"][0][0] for row in samples] == [g.text for g in expected]
    assert "exact_match,none" in results["results"]["tiny_gen"]


ANSWER = "Looks accurate overall. Score: 2"


def test_a_served_eft_model_judges_for_eft_eval_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """base == ref cancel exactly, so this EFT model answers as its fine-tuned component (a chain
    model that always writes ANSWER): the judge gets a parseable score through the server."""
    chain = build_chain_model(tmp_path / "chain", ANSWER)
    from eft_eval.models import EFTModel

    model = EFTModel.from_spec(f"base={chain},ft={chain},ref={chain}")
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"query": f"Q{i}?", "response": f"Response {i}."}) + "\n" for i in range(3)))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with serve_in_thread(model, api_key=KEY) as server:
        code = main(["judge", "--input", str(source), "--judges", "factuality", "--output", str(tmp_path / "out"),
                     "--base-url", server.v1, "--judge-model", "eft", "--cache-dir", str(tmp_path), "--no-progress"])
    assert code == 0
    summary = json.loads((tmp_path / "out" / "results.json").read_text())["judges"]["factuality"]
    assert (summary["mean"], summary["n_scored"], summary["n_failed"]) == (2.0, 3, 0)


def test_bench_serve_reports_ratio_latencies_and_identical_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "serve", "--json", "--workload", "closed", "--clients", "4", "--prompts", "8", "--tokens",
                 "4", "--repeats", "1", "--small-hidden", "32", "--large-hidden", "64"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["outputs_identical"] is True  # the server's greedy texts are generate's
    assert result["throughput_ratio"] > 0 and result["serve_tokens_per_s"] > 0
    assert 0 < result["serve_latency_p50_s"] <= result["serve_latency_p95_s"]
    assert result["serve_mean_batch"] > 1  # concurrent clients shared batches
    assert result["config"]["batch_size"] == 4


def test_bench_serve_streams_requests_to_both_schedulings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "serve", "--json", "--batch-size", "4", "--prompts", "8", "--tokens", "10", "--repeats",
                 "1", "--small-hidden", "32", "--large-hidden", "64"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["generate_tokens_per_s"] > 0
    for scheduling in ("batch", "step"):
        measured = result[scheduling]
        assert measured["outputs_identical"] is True, scheduling  # every streamed text is generate's
        assert measured["throughput_ratio"] > 0 and measured["tokens_per_s"] > 0
        assert 0 < measured["ttft_p50_s"] <= measured["ttft_p95_s"]
        assert 0 < measured["latency_p50_s"] <= measured["latency_p95_s"]
        assert measured["mean_rows_per_step"] >= 1
    assert result["config"]["answer_tokens"] == [1, 10] and result["config"]["requests"] == 8
