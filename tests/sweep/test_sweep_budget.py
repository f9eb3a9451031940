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
from pipeline_helpers import HH_FILE, judge_answer
from test_sweep import write_study

from eft_eval.cli import main
from eft_eval.testing import BatchAPIFake, LoopbackServer

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
    states = [out / "runs" / label / "judge-batches.json" for label in POINTS]

    def submitted(state: Path) -> bool:
        return state.is_file() and any(entry["batch_id"] for entry in json.loads(state.read_text())["batches"])

    with BatchAPIFake(lambda body: "Reason: fine.\nScore: 5", per_poll=0) as api:  # batches never finish
        env = {**os.environ, "OPENAI_API_KEY": "sk-fake", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        first = subprocess.Popen([sys.executable, "-m", "eft_eval.cli", *args, "--base-url", api.base_url], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while not all(submitted(state) for state in states) and time.monotonic() < deadline:
            assert first.poll() is None, "the sweep ended before submitting every run's batch"
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)  # waiting on the first run's batch, which never finishes
        first.wait(timeout=60)
        assert len(api.created_batches) == len(POINTS)

        loads: list[str] = []
        monkeypatch.setattr(_components, "load_model", lambda spec: loads.append(spec.model))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        capsys.readouterr()
        assert main([*args, "--base-url", api.base_url, "--cancel"]) == 0
        assert sorted(api.cancelled) == sorted(api.created_batches)  # every run's, none created anew
        created = api.created_batches
    assert loads == []  # no model loaded: nothing generated
    assert f"cancelled 3 batch(es): {', '.join(created)}" in capsys.readouterr().err
    assert not (out / "analysis").exists()
    assert all(json.loads(state.read_text())["batches"][0]["status"] == "cancelled" for state in states)


def test_a_batch_sweep_submits_every_run_s_batches_before_waiting_on_any(
        tiny_family: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def answer(body: dict[str, Any]) -> str:
        return f"Reason: scripted.\nScore: {len(body['messages'][0]['content']) % 10}"

    study = write_study(tmp_path / "studies", tiny_family, run=RUN)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    with BatchAPIFake(answer, per_poll=1) as api:
        def sweep(out: Path, *extra: str) -> int:
            return main(["sweep", str(study), "--output", str(out), "--base-url", api.base_url, "--no-progress",
                         "--batch-poll-interval", "0.01", *extra])

        assert sweep(tmp_path / "live") == 0
        assert api.created_batches == []
        capsys.readouterr()
        assert sweep(tmp_path / "batch", "--judge-mode", "batch") == 0
        creates = [i for i, (kind, _) in enumerate(api.events) if kind == "create"]
        retrieves = [i for i, (kind, _) in enumerate(api.events) if kind == "retrieve"]
        assert len(creates) == len(POINTS) and max(creates) < min(retrieves)  # all submitted, then polled
        live_requests = len(api.live_requests)
    err = capsys.readouterr().err
    assert "submitting every run's batches before waiting on any" in err
    assert err.count("re-attaching to batch") == len(POINTS)
    assert live_requests == 2 * len(POINTS)  # the live sweep's; the batch sweep asked nothing live
    for label in POINTS:
        live, batch = (jsonl_rows(tmp_path / mode / "runs" / label / "samples.jsonl") for mode in ("live", "batch"))
        assert [row["judgments"] for row in batch] == [row["judgments"] for row in live]
        assert [row["response"] for row in batch] == [row["response"] for row in live]


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]


def batch_sweeper(study: Path, tmp_path: Path, api: BatchAPIFake) -> Any:
    """`sweep(out, budget)` in batch mode with $1 a prompt token (answers free), as `main` returns it."""
    prices = tmp_path / "prices.yaml"
    prices.write_text("currency: USD\nper_tokens: 1000000\nmodels:\n  priced: {input: 1000000, output: 0}\n")

    def sweep(out: Path, budget: float) -> int:
        return main(["sweep", str(study), "--output", str(out), "--base-url", api.base_url, "--no-progress",
                     "--judge-mode", "batch", "--batch-poll-interval", "0.01", "--judge-model", "priced",
                     "--prices", str(prices), "--budget", repr(budget), "--max-retries", "0"])

    return sweep


def test_a_batch_sweep_counts_submitted_batches_against_the_budget_until_they_are_paid(
        tiny_family: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    study = write_study(tmp_path / "studies", tiny_family, run=RUN)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    with BatchAPIFake(lambda body: "Reason: fine.\nScore: 5") as api:
        sweep = batch_sweeper(study, tmp_path, api)
        assert sweep(tmp_path / "calibration", 1e9) == 0
        costs = [cost(tmp_path / "calibration", label) for label in POINTS]
        # Room for the first two runs' worst cases, not for the third's on top: the third is
        # submitted only once the first two are paid for (at about half their estimates).
        budget = costs[0]["estimate_usd"] + costs[1]["estimate_usd"] + 0.5 * costs[2]["estimate_usd"]
        del api.events[:]
        capsys.readouterr()
        assert sweep(tmp_path / "out", budget) == 0
        kinds = [kind for kind, _ in api.events]
    err = capsys.readouterr().err
    assert kinds[:2] == ["create", "create"] and kinds.count("create") == 3 and kinds[-1] != "create"
    assert kinds.index("retrieve") < len(kinds) - 1 - kinds[::-1].index("create")  # the third after polling
    assert "run alpha=1 not submitted: judging what is left" in err
    spent = [cost(tmp_path / "out", label)["new_usd"] for label in POINTS]
    assert spent == [c["new_usd"] for c in costs] and sum(spent) <= budget


def test_a_batch_run_that_fails_after_submitting_still_counts_at_its_worst_case(
        tiny_family: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The first run's batch is submitted, then the Batch API fails it on every poll (HTTP 500): the
    run fails, but OpenAI may still bill that batch, so the third run must not spend its share."""
    study = write_study(tmp_path / "studies", tiny_family, run=RUN)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    with BatchAPIFake(lambda body: "Reason: fine.\nScore: 5") as api:
        sweep = batch_sweeper(study, tmp_path, api)
        assert sweep(tmp_path / "calibration", 1e9) == 0
        estimates = [cost(tmp_path / "calibration", label)["estimate_usd"] for label in POINTS]
        # The first two runs' worst cases and a fifth of the third's: the third fits only if the
        # failed first run's batch were forgotten (the second pays about half its estimate).
        budget = estimates[0] + estimates[1] + 0.2 * estimates[2]
        first = len(api.created_batches)
        api.retrieve_status = lambda batch_id: 500 if api.created_batches.index(batch_id) == first else None
        capsys.readouterr()
        assert sweep(tmp_path / "out", budget) == 1
        created = api.created_batches[first:]
    err = capsys.readouterr().err
    assert len(created) == 2  # the first two runs' batches; the third never fitted
    assert "run alpha=0 failed: the Batch API refused a request (HTTP 500" in err
    assert (tmp_path / "out" / "runs" / POINTS[1] / "results.json").is_file()
    assert "run alpha=1 failed: judging what is left (2 requests not in the cache)" in err
    assert not (tmp_path / "out" / "runs" / POINTS[2] / "results.json").exists()


def test_what_a_failed_run_paid_or_submitted_still_counts_against_the_sweep_s_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Faults injected into the runs (`_run_point`): the sweep's accounting, run by run."""
    from types import SimpleNamespace

    from eft_eval.judging import BatchesSubmitted, CostSettings, JudgeConfig
    from eft_eval.judging._ledger import JudgingStopped
    from eft_eval.sweep import _sweep

    def submitted(estimate: float) -> BatchesSubmitted:
        error = BatchesSubmitted("submitted")
        error.estimate_usd = estimate
        return error

    script = {
        ("A", True): submitted(4.0),  # phase 1: A's batches out, worst case $4
        ("B", True): JudgingStopped("refused after one of two files", 0.0, 3.0),  # one went out
        ("C", True): JudgingStopped("over the budget", 0.0, 5.0),  # nothing went out
        ("A", False): JudgingStopped("failed while waiting", 1.0, 4.0),  # paid $1, may yet be billed $4
        ("B", False): SimpleNamespace(results={"cost": {"new_usd": 2.5}}),
        ("C", False): SimpleNamespace(results={"cost": {"new_usd": 0.5}}),
    }
    calls: list[tuple[str, float, bool]] = []

    def run_point(point: Any, options: Any, budget_spent: float = 0.0, submit_only: bool = False) -> Any:
        calls.append((point.label, budget_spent, submit_only))
        outcome = script[(point.label, submit_only)]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(_sweep, "_run_point", run_point)
    monkeypatch.setattr(_sweep, "_open_batches", lambda options, point: point.label == "B")
    points = [SimpleNamespace(label=label) for label in "ABC"]
    options = SimpleNamespace(judge=JudgeConfig(mode="batch", cost=CostSettings(budget=20.0), api_key="k"))
    said: list[str] = []
    failed, spent = _sweep._judge_points(SimpleNamespace(name="s"), points, options,  # type: ignore[arg-type]
                                         said.append)
    assert calls == [("A", 0.0, True), ("B", 4.0, True), ("C", 7.0, True),  # submitted worst cases add up
                     ("A", 3.0, False),  # B's pending $3
                     ("B", 4.0, False),  # A failed: its $4 worst case stays counted (more than the $1 paid)
                     ("C", 6.5, False)]  # + B's $2.50 paid
    assert list(failed) == ["A"]
    assert spent == 4.0 + 2.5 + 0.5  # A's worst case, B and C paid: what the pairwise step may not spend again
    assert "run 3/3 C ($13.5000 of --budget left)" in "\n".join(said)
