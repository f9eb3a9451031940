"""`eft-eval bench inspect --json`: a tiny smoke run checks the report's shape, that inspect's texts
equal `EFTModel.generate`'s and that the engine batched the concurrent samples (never timings)."""

from __future__ import annotations

import json

import pytest

from eft_eval.cli import main


@pytest.mark.slow
def test_bench_inspect_json_reports_the_ratio_identical_texts_and_batches(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "inspect", "--json", "--prompts", "8", "--tokens", "3", "--batch-size", "4", "--repeats", "1",
            "--small-hidden", "16", "--large-hidden", "32"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outputs_identical"] is True
    assert result["inspect_mean_batch"] > 1  # concurrent samples shared batches
    assert result["throughput_ratio"] > 0 and result["inspect_s"] > 0 and result["generate_s"] > 0
    assert 0 < result["inspect_decoding_s"] < result["inspect_s"]
    assert result["config"] == {"batch_size": 4, "prompts": 8, "tokens": 3, "small": "16x2", "large": "32x4",
                                "threads": 1, "repeats": 1}
