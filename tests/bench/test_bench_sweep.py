"""`eft-eval bench sweep --json`: a tiny smoke run checks the report's shape and that the batched
sweep reproduced the separate runs' samples (never timings)."""

from __future__ import annotations

import json

import pytest

from eft_eval.cli import main


@pytest.mark.slow
def test_bench_sweep_json_reports_speedup_and_identical_samples(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "sweep", "--json", "--points", "3", "--prompts", "2", "--tokens", "4", "--repeats", "1"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["points"], result["prompts"], result["new_tokens"]) == (3, 2, 4)
    assert result["identical_samples"] is True
    assert result["distinct_response_sets"] > 1  # the alphas really differ, so identity means something
    assert result["sweep_s"] > 0 and result["separate_s"] > 0 and result["speedup"] > 0
    assert 0 < result["sweep_generation_s"] < result["sweep_s"]


def test_bench_sweep_rejects_a_one_point_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse refuses it: a sweep needs two alphas
        main(["bench", "sweep", "--points", "1"])
    assert exited.value.code == 2
    assert "argument --points: '1' is out of range" in capsys.readouterr().err
