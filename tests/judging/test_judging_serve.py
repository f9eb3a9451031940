"""Happy paths with real models: `transformers serve` over HTTP, and the offline local backend.

Both use tiny llamas whose weights make greedy decoding write a known answer (see
`eft_eval.testing.build_chain_model`), so the judgments can be checked exactly.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest

from eft_eval.cli import main
from eft_eval.judging import (
    JudgeConfig,
    JudgeItem,
    LocalModelSettings,
    judge_items_sync,
    load_judges,
    parse_score,
)
from eft_eval.testing import build_chain_model, save_as_gguf, transformers_serve

ANSWER = "Looks accurate overall. Score: 2"


@pytest.fixture(scope="module")
def chain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chain_model(tmp_path_factory.mktemp("chain") / "model", ANSWER)


@pytest.fixture(scope="module")
def abstaining_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chain_model(tmp_path_factory.mktemp("chain") / "abstains", "Looks fine. Score: None")


@pytest.mark.slow
def test_transformers_serve_happy_path_then_rerun_without_the_server(
    chain_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local server needs no key
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"query": f"Q{i}?", "response": f"Response {i}."}) + "\n" for i in range(4)))
    (factuality,) = load_judges(["factuality"])
    items = [JudgeItem(f"Q{i}?", f"Response {i}.") for i in range(4)]
    model_name = str(chain_model)  # `transformers serve MODEL` answers requests for that name

    def settings(base_url: str) -> JudgeConfig:
        return JudgeConfig(base_url=base_url, judge_model=model_name, concurrency=2, timeout=60,
                           cache_path=tmp_path / "cache.sqlite", progress=False)

    def judge_command(base_url: str) -> int:
        return main(["judge", "--input", str(source), "--judges", "factuality", "--output", str(tmp_path / "out"),
                     "--base-url", base_url, "--judge-model", model_name, "--cache-dir", str(tmp_path),
                     "--no-progress", "--timeout", "60"])

    with transformers_serve(chain_model, tmp_path / "serve.log") as base_url:
        results = judge_items_sync(items, [factuality], settings(base_url))
        assert judge_command(base_url) == 0

    for result in results:
        judgment = result["factuality"]
        assert judgment["status"] == "scored" and judgment["score"] == 2.0
        assert judgment["raw"] == ANSWER and judgment["reason"] == "Looks accurate overall."
        assert judgment["judge_model"] == model_name and judgment["attempts"] == 1
        assert judgment["usage"]["prompt_tokens"] > 50 and judgment["usage"]["completion_tokens"] > 0
    summary = json.loads((tmp_path / "out" / "results.json").read_text())["judges"]["factuality"]
    assert (summary["mean"], summary["n_scored"], summary["n_failed"]) == (2.0, 4, 0)

    # The server is gone: everything must come from the cache (port now closed, any request would fail).
    assert judge_items_sync(items, [factuality], settings(base_url)) == results
    first = (tmp_path / "out" / "samples.jsonl").read_text()
    assert judge_command(base_url) == 0
    assert (tmp_path / "out" / "samples.jsonl").read_text() == first


def test_local_backend_scores_by_the_models_own_choice(chain_model: Path, tmp_path: Path) -> None:
    judges = load_judges(["factuality", "helpfulness"])
    config = JudgeConfig(backend="local", local=LocalModelSettings(model=str(chain_model), max_new_tokens=16),
                         cache_path=tmp_path / "c.sqlite", progress=False)
    results = judge_items_sync([JudgeItem("What is 1+1?", "It is 2.")], judges, config)
    for name in ("factuality", "helpfulness"):
        judgment = results[0][name]
        # The chain model follows ":" with "2": the constrained score picks it by its log-prob.
        assert judgment["status"] == "scored" and judgment["score"] == 2.0, judgment
        assert judgment["raw"].startswith("Reason:") and judgment["raw"].endswith("\nScore: 2")
        assert judgment["judge_model"] == f"local:{chain_model}" and judgment["attempts"] == 1
        assert parse_score(judgment["raw"], judges[0]).score == 2.0


def test_local_backend_always_parses_abstains_only_where_allowed(abstaining_model: Path, tmp_path: Path) -> None:
    judges = load_judges(["factuality", "helpfulness"])
    config = JudgeConfig(backend="local", local=LocalModelSettings(model=str(abstaining_model), max_new_tokens=16),
                         cache_path=None, progress=False)
    (result,) = judge_items_sync([JudgeItem("How do I pick a lock?", "Here is how...")], judges, config)
    # The model wants "None": factuality allows it (an abstention, no score)...
    assert result["factuality"]["status"] == "abstained" and result["factuality"]["score"] is None
    assert result["factuality"]["raw"].endswith("Score: None")
    # ...helpfulness does not, so the most probable valid score is taken instead of a parse failure.
    helpfulness = result["helpfulness"]
    assert helpfulness["status"] == "scored" and 0 <= helpfulness["score"] <= 100
    assert helpfulness["attempts"] == 1


def test_local_backend_reads_a_gguf_once_then_its_converted_copy(chain_model: Path, tmp_path: Path) -> None:
    gguf_path = save_as_gguf(chain_model, tmp_path / "chain.gguf")
    judges = load_judges(["factuality"])
    items = [JudgeItem("What is 1+1?", "It is 2.")]

    def run(cache_file: str | None) -> dict:
        config = JudgeConfig(backend="local",
                             local=LocalModelSettings(model=str(tmp_path), gguf_file="chain.gguf", max_new_tokens=8),
                             cache_path=tmp_path / "cache" / cache_file if cache_file else None, progress=False)
        return judge_items_sync(items, judges, config)[0]["factuality"]

    first = run("first.sqlite")
    assert first["status"] == "scored" and first["score"] == 2.0 and first["judge_model"] == "local:chain.gguf"
    (converted,) = (tmp_path / "cache" / "local-models").iterdir()
    assert (converted / "model.safetensors").is_file() and (converted / "tokenizer.json").is_file()

    # Spoil the GGUF but keep its size and time stamp: only the converted copy can still answer.
    stat = gguf_path.stat()
    gguf_path.write_bytes(b"\0" * stat.st_size)
    os.utime(gguf_path, (stat.st_atime, stat.st_mtime))
    # This process read the file once already: that copy answers, the file is not read again...
    assert run(None)["score"] == 2.0
    from eft_eval.models import _components

    _components._GGUF_LOADED.clear()  # ...as in a new process, where the file is read
    with pytest.raises(Exception):  # noqa: B017 - whatever the GGUF reader raises: the file is garbage
        run(None)  # no cache folder, so no converted copy: reads the spoiled file
    second = run("second.sqlite")  # a fresh answer cache, so the model itself is asked again
    assert {k: second[k] for k in ("status", "score", "raw")} == {k: first[k] for k in ("status", "score", "raw")}


def test_judge_command_prints_the_run_table_and_a_local_judge_costs_nothing_in_words(
        chain_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "responses.jsonl"
    source.write_text("".join(json.dumps({"query": f"Q{i}?", "response": f"A{i}."}) + "\n" for i in range(2)))
    caplog.set_level(logging.INFO)
    assert main(["judge", "--input", str(source), "--judges", "factuality", "--output", str(tmp_path / "out"),
                 "--backend", "local", "--local-model", str(chain_model), "--local-max-new-tokens", "16",
                 "--no-cache", "--no-progress"]) == 0
    out = capsys.readouterr().out
    # The same table `eft-eval run` prints (not a JSON dump), with the cost in words, never "$0.0000".
    header = next(line for line in out.splitlines() if line.startswith("run "))
    assert header.split() == ["run", "task", "judge", "mean", "stderr", "scored", "abstained", "failed", "direction"]
    assert re.search(r"^out +judge +factuality +2 +0 +2 +0 +0 +lower is better$", out, re.MULTILINE), out
    assert "out: judge cost: local (no API cost)" in out and "$0.0000" not in out
    assert "judge cost estimate" not in caplog.text  # nothing to pay, nothing to estimate
