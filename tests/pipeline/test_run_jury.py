"""`eft-eval run` with a jury of judge models: tiny EFT models generate, three loopback judge models
judge, and a re-run asks nothing again."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from eft_eval.cli import main
from eft_eval.testing import LoopbackServer, Reply
from tests.pipeline_helpers import run_args

JURY = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-nano")
JUDGES = ("helpfulness", "harm", "factuality")


def member_answer(body: dict[str, Any]) -> Reply:
    """Each model's score: a hash of the request plus the model's own offset."""
    text = json.dumps(body["messages"], sort_keys=True)
    score = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10 + 3 * JURY.index(body["model"])
    return Reply(f"Reason: {body['model']}.\nScore: {score}")


def test_a_run_with_a_jury_judges_with_each_model_and_resumes_from_the_cache(
        tiny_family: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    args = [*run_args(tiny_family, tmp_path / "run", "BASE"), "--judge-model", ",".join(JURY),
            "--jury-aggregation", "median", "--no-progress", "--no-html"]
    with LoopbackServer(member_answer) as server, contextlib.redirect_stderr(io.StringIO()):
        args[args.index("BASE")] = server.base_url
        assert main(args) == 0
        first = server.request_count
        assert first == 4 * len(JUDGES) * len(JURY)  # 4 prompts, the task's three judges, three models
        assert main(args) == 0
        assert server.request_count == first  # resumed: nothing asked twice
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert results["judge_config"]["jury"] == {"models": list(JURY), "aggregation": "median"}
    for judge in JUDGES:
        summary = results["judges"][judge]
        judgments = [row["judgments"][judge] for row in rows]
        for judgment in judgments:
            assert judgment["score"] == statistics.median(judgment["models"][m]["score"] for m in JURY)
        assert summary["mean"] == pytest.approx(statistics.mean(j["score"] for j in judgments))
        for model in JURY:
            own = [j["models"][model]["score"] for j in judgments]
            assert summary["jury"]["models"][model]["mean"] == pytest.approx(statistics.mean(own))
    assert {(row["judge"], row["judge_model"]) for row in results["cost"]["by_judge"]} == {
        (judge, model) for judge in JUDGES for model in JURY}
