"""A study's `pairwise:` step within the sweep's `--budget` (what the runs spent is not spent again),
and `round_robin: true` (the compared points also against each other)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from test_sweep import write_study
from test_sweep_budget import POINTS, RUN, cost
from test_sweep_pairwise import both_kinds

from eft_eval.cli import main
from eft_eval.testing import LoopbackServer

PAIRWISE = {"judges": ["preference"], "against": "alpha=0", "round_robin": True}
# $1 a prompt token, answers free (as test_sweep_budget): a run spends about half its estimate.
PRICES = "currency: USD\nper_tokens: 1000000\nmodels:\n  priced: {input: 1000000, output: 0}\n"


def sweep(study: Path, out: Path, server: LoopbackServer, prices: Path, budget: float) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        code = main(["sweep", str(study), "--output", str(out), "--base-url", server.base_url, "--no-progress",
                     "--judge-model", "priced", "--prices", str(prices), "--budget", repr(budget)])
    return code, stderr.getvalue()


def test_the_pairwise_step_has_only_what_the_runs_left_of_the_budget(tiny_family: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    study = write_study(tmp_path / "studies", tiny_family, run=RUN, pairwise=PAIRWISE)
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    with LoopbackServer(both_kinds) as server:
        # Unhindered: each run's estimate and spending, and what the pairwise step would need.
        code, err = sweep(study, tmp_path / "calibration", server, prices, 1e9)
        assert code == 0, err[-2000:]
        runs = [cost(tmp_path / "calibration", label) for label in POINTS]
        spent = 0.0
        for run in runs:  # the sweep's own sum, in its order
            spent += run["new_usd"]
        folder = tmp_path / "calibration" / "pairwise"
        calibration = json.loads((folder / "results.json").read_text())
        assert calibration["cost"]["budget_spent_before_usd"] == pytest.approx(spent, abs=1e-6)
        # round_robin: 2 runs against alpha=0, and against each other, both orders of 1 prompt (a request
        # the tiny models' identical responses make twice is asked once).
        rows = [json.loads(row) for name in ("pairs.jsonl", "run_pairs.jsonl")
                for row in (folder / name).read_text().splitlines()]
        assert [(row["run"], row["reference"]) for row in rows] == [
            ("alpha=0.5", "alpha=0"), ("alpha=1", "alpha=0"), ("alpha=0.5", "alpha=1")]
        asked = {(row["query"], *sides) for row in rows
                 for sides in ((row["response"], row["reference_response"]),
                               (row["reference_response"], row["response"]))}
        assert [line["requests"] for line in calibration["cost"]["by_judge"]] == [len(asked)]
        assert calibration["judges"]["preference"]["bradley_terry"]["n_comparisons"] == 3
        assert json.loads((tmp_path / "calibration" / "sweep.json").read_text())["pairwise"]["round_robin"] is True

        # A budget the runs nearly exhaust: each run fits what the earlier ones left, and the pairwise step
        # would fit the whole budget (as it was given before), but not what the runs left of it.
        needed = calibration["cost"]["estimate_usd"]
        runs_need = max(sum(r["new_usd"] for r in runs[:k]) + runs[k]["estimate_usd"] for k in range(len(runs)))
        budget = max(runs_need, needed) + 1e-6
        left = budget - spent
        assert 0 < left < needed <= budget
        before = server.request_count
        code, err = sweep(study, tmp_path / "out", server, prices, budget)
        assert server.request_count - before == len(POINTS) * len(RUN["judges"])  # the runs' requests, nothing more
    assert code != 0
    assert [cost(tmp_path / "out", label)["new_usd"] for label in POINTS] == [r["new_usd"] for r in runs]
    errors = [line for line in err.splitlines() if line.startswith("eft-eval: error:")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err[-2000:]
    assert (f"needs up to ${needed:.4f}, more than the ${left:.4f} left of --budget "
            f"${budget:.4f} (the sweep's earlier runs spent ${spent:.4f}); nothing was asked") in errors[0]
    assert not (tmp_path / "out" / "pairwise" / "results.json").exists()


def test_round_robin_must_be_a_boolean(tiny_family: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    pairwise: dict[str, Any] = {**PAIRWISE, "round_robin": "maybe"}
    path = write_study(tmp_path, tiny_family, pairwise=pairwise)
    assert main(["sweep", str(path), "--list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pairwise.round_robin must be true or false, got 'maybe'" in err, err
