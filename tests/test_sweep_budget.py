"""`eft-eval sweep` at paper scale: `--budget` is for the whole sweep, and `--judge-mode batch
--cancel` cancels the runs' recorded batches without generating, judging or analysing."""

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
from batch_api_fake import BatchAPIFake
from openai_servers import LoopbackServer
from test_pipeline import judge_answer
from test_sweep import write_study
from test_tasks import HH_FILE

from eft_eval.cli import main

POINTS = ["alpha=0", "alpha=0.5", "alpha=1"]
RUN = {"task": "hh_harmless", "judges": ["helpfulness", "harm"], "limit": 1, "max_new_tokens": 3,
       "data_files": [str(HH_FILE)]}


def cost(out: Path, label: str) -> dict[str, Any]:
    return json.loads((out / "runs" / label / "results.json").read_text())["cost"]


def test_a_sweep_s_budget_covers_all_its_runs(tiny_family: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    study = write_study(tmp_path / "studies", tiny_family, run=RUN)
    # $1 a prompt token and answers free: what a run spends is about half its estimate (the
    # loopback counts words, the estimate a token per 3 characters), so a second run cannot fit
    # in what the first leaves of a budget sized to the first alone.
    prices = tmp_path / "prices.yaml"
    prices.write_text("currency: USD\nper_tokens: 1000000\nmodels:\n  priced: {input: 1000000, output: 0}\n")
    with LoopbackServer(judge_answer) as server:
        def sweep(out: Path, budget: float) -> int:
            return main(["sweep", str(study), "--output", str(out), "--base-url", server.base_url, "--no-progress",
                         "--judge-model", "priced", "--prices", str(prices), "--budget", repr(budget)])

        assert sweep(tmp_path / "calibration", 1e9) == 0  # each run's estimate and spending, unhindered
        first = cost(tmp_path / "calibration", POINTS[0])
        assert 0 < first["new_usd"] < first["estimate_usd"]
        capsys.readouterr()
        before = server.request_count
        budget = first["estimate_usd"] + 1e-6
        assert sweep(tmp_path / "out", budget) == 1  # the later runs do not fit
        assert server.request_count - before == 2  # only the first run asked (its two judges)
    err = capsys.readouterr().err
    assert cost(tmp_path / "out", POINTS[0])["new_usd"] == first["new_usd"] <= budget
    left = budget - first["new_usd"]
    assert f"run 2/3 alpha=0.5 (${left:.4f} of --budget left)" in err
    for label in POINTS[1:]:
        assert f"run {label} failed: judging what is left (2 requests not in the cache)" in err
        assert not (tmp_path / "out" / "runs" / label / "results.json").exists()
    assert f"more than the ${left:.4f} left of --budget ${budget:.4f} (the sweep's earlier runs spent " \
           f"${first['new_usd']:.4f}); nothing was asked" in err


@pytest.mark.slow
def test_sweep_cancel_cancels_recorded_batches_and_generates_nothing(
        tiny_family: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from eft_eval.models import _components

    study = write_study(tmp_path / "studies", tiny_family, run=RUN)
    out = tmp_path / "out"
    args = ["sweep", str(study), "--output", str(out), "--no-progress", "--judge-mode", "batch",
            "--batch-poll-interval", "0.05"]
    state = out / "runs" / POINTS[0] / "judge-batches.json"
    with BatchAPIFake(lambda body: "Reason: fine.\nScore: 5", per_poll=0) as api:  # batches never finish
        env = {**os.environ, "OPENAI_API_KEY": "sk-fake", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        first = subprocess.Popen([sys.executable, "-m", "eft_eval.cli", *args, "--base-url", api.base_url], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while not (state.is_file() and json.loads(state.read_text())["batches"]) and time.monotonic() < deadline:
            assert first.poll() is None, "the sweep ended before submitting its first batch"
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
        [batch_id] = api.created_batches

        loads: list[str] = []
        monkeypatch.setattr(_components, "load_model", lambda spec: loads.append(spec.model))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        capsys.readouterr()
        assert main([*args, "--base-url", api.base_url, "--cancel"]) == 0
        assert api.cancelled == [batch_id] and api.created_batches == [batch_id]
    assert loads == []  # no model loaded: nothing generated
    assert f"cancelled 1 batch(es): {batch_id}" in capsys.readouterr().err
    assert not (out / "analysis").exists()
    assert json.loads(state.read_text())["batches"][0]["status"] == "cancelled"
