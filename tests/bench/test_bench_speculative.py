"""`eft-eval bench speculative --json`: a tiny smoke run checks the report's shape (never timings)."""

from __future__ import annotations

import json

import pytest

from eft_eval.cli import main


@pytest.mark.slow
def test_bench_speculative_json_has_every_row(capsys):
    argv = ["bench", "speculative", "--json", "--prompts", "2", "--max-new-tokens", "6", "--blocks", "2,4",
            "--repeats", "1", "--extra-layers", "1", "--threads", "1"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("plain_tokens_per_s", "base_alone_tokens_per_s", "ft_alone_tokens_per_s", "base_cost_ratio",
                "best_speedup", "best_speedup_rejection", "agreement", "rows"):
        assert key in result
    assert [(r["mode"], r["block"]) for r in result["rows"]] == [
        ("exact", 2), ("exact", 4), ("rejection", 2), ("rejection", 4)]
    assert all(r["tokens_per_s"] > 0 and 0 <= r["acceptance_rate"] <= 1 for r in result["rows"])
    assert all(1 <= r["mean_tokens_per_block"] <= r["block"] for r in result["rows"])
    assert all(0 <= r["mean_accepted_per_block"] <= r["mean_tokens_per_block"] for r in result["rows"])
    # The exact mode reproduced plain decoding inside the benchmark too.
    assert all(r["identical_to_plain"] for r in result["rows"] if r["mode"] == "exact")
    assert 0 < result["agreement"] <= 1


def test_bench_speculative_rejects_bad_blocks(capsys):
    assert main(["bench", "speculative", "--blocks", "0,2"]) == 2
    assert "--blocks" in capsys.readouterr().err
