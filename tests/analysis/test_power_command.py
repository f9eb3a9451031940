"""`eft-eval analyze power RUN_A RUN_B`: a pilot's minimum detectable difference and the prompts an
effect needs, paired as `compare` pairs; and the scaling and frontier analyses marking differences
smaller than their minimum detectable effect."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from analysis_helpers import model_spec, write_run
from pipeline_helpers import judge_answer, run_args
from scipy import stats

from eft_eval.analysis import analyze_power, compare_analysis, frontier_analysis, load_run, scaling_analysis
from eft_eval.cli import main
from eft_eval.stats import BootstrapSettings
from eft_eval.testing import LoopbackServer

A_SCORES = [3.0, 5.0, 7.0, 4.0, 6.0, 8.0, 2.0, "abstained", 5.0, 6.0]
B_SCORES = [4.0, 5.0, 9.0, 5.0, 6.0, 9.0, 4.0, 6.0, "failed", 7.0]
"""Prompts 7 and 8 are scored in one run only: the pair is left out, as compare leaves it out."""
DIFFERENCES = np.array([1.0, 0.0, 2.0, 1.0, 0.0, 1.0, 2.0, 1.0])


def mde(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Written out here: (t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n)."""
    return (stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / math.sqrt(n)


@pytest.fixture
def pilot(tmp_path: Path) -> tuple[Path, Path]:
    return (write_run(tmp_path / "a", {"helpfulness": A_SCORES, "factuality": [0, 1, 0, 0, 1, 0, 0, 0, 1, 0]}),
            write_run(tmp_path / "b", {"helpfulness": B_SCORES, "factuality": [0, 1, 0, 0, 1, 0, 0, 0, 1, 1]}))


def test_power_command_writes_the_paired_figures_per_judge(tmp_path: Path, pilot: tuple[Path, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["analyze", "power", str(pilot[0]), str(pilot[1]), "--effect", "0.25", "--power", "0.9",
                 "--alpha", "0.01", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["power.csv", "power.json", "power.png", "power.svg"]
    data = json.loads((out / "power.json").read_text())
    row = next(r for r in data["rows"] if r["judge"] == "helpfulness")
    sd = DIFFERENCES.std(ddof=1)
    assert row["n_paired"] == 8 and row["n_unpaired"] == 2
    assert row["sd_difference"] == pytest.approx(sd) and row["mean_difference"] == pytest.approx(1.0)
    assert row["minimum_detectable_effect"] == pytest.approx(mde(sd, 8, 0.01, 0.9))
    assert (row["effect"], row["power"], row["alpha"], row["approximation"]) == (0.25, 0.9, 0.01, "t")
    # The smallest n whose MDE is at most the effect, by the written-out formula.
    needed = row["required_prompts"]
    assert mde(sd, needed, 0.01, 0.9) <= 0.25 < mde(sd, needed - 1, 0.01, 0.9)
    # 1.0 observed, but at alpha 0.01 and power 0.9 eight prompts detect only about 1.3.
    assert mde(sd, 8, 0.01, 0.9) == pytest.approx(1.31, abs=0.01) and row["below_mde"] is True
    # Paired exactly as compare pairs them.
    compare = compare_analysis(load_run(pilot[0]), load_run(pilot[1]), settings=BootstrapSettings(n_resamples=100))
    assert [(r["judge"], r["n_paired"]) for r in compare["rows"]] == [(r["judge"], r["n_paired"]) for r in data["rows"]]
    factuality = next(r for r in data["rows"] if r["judge"] == "factuality")
    assert factuality["below_mde"] is True and factuality["n_paired"] == 10
    assert f"{needed}" in printed and "below MDE" in printed and "helpfulness (higher is better)" in printed


def test_without_an_effect_only_the_detectable_difference(pilot: tuple[Path, Path], tmp_path: Path) -> None:
    result = analyze_power(pilot[0], pilot[1], tmp_path / "out", judges=["helpfulness"])
    (row,) = result["data"]["rows"]
    assert row["required_prompts"] is None and row["effect"] is None
    assert row["minimum_detectable_effect"] == pytest.approx(mde(DIFFERENCES.std(ddof=1), 8))


@pytest.mark.parametrize(("flags", "message"), [
    (["--power", "1"], "argument --power: '1' is out of range (expected a finite number > 0 and < 1)"),
    (["--power", "nan"], "argument --power: 'nan' is not a finite number"),
    (["--alpha", "0"], "argument --alpha: '0' is out of range"),
    (["--alpha", "1.5"], "argument --alpha: '1.5' is out of range"),
    (["--effect", "0"], "argument --effect: '0' is out of range (expected a finite number > 0)"),
    (["--effect", "-1"], "argument --effect: '-1' is out of range"),
    (["--effect", "big"], "argument --effect: 'big' is not a number"),
])
def test_bad_settings_are_one_line(pilot: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   flags: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["analyze", "power", str(pilot[0]), str(pilot[1]), *flags, "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert raised.value.code == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_library_call_refuses_bad_settings_before_reading_runs(tmp_path: Path) -> None:
    from eft_eval.errors import EFTEvalError

    with pytest.raises(EFTEvalError, match=r"power analysis: effect=-0.5 is out of range"):
        analyze_power(tmp_path / "missing-a", tmp_path / "missing-b", effect=-0.5)


def test_runs_of_different_prompts_are_refused_as_compare_refuses_them(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", {"helpfulness": [1.0, 2.0, 3.0]})
    b = write_run(tmp_path / "b", {"helpfulness": [1.0, 2.0, 4.0]}, responses=["x", "y", "z"])
    rows = [json.loads(line) for line in (b / "samples.jsonl").read_text().splitlines()]
    rows[2]["query"] = "Another question?"
    (b / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["analyze", "power", str(a), str(b), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "power: 1 of 3 prompts matched by doc_id differ in their text" in err and "--only-same-prompts" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["analyze", "power", str(a), str(b), "--only-same-prompts", "--json", "-o", str(tmp_path / "o")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_different_prompts"] == 1 and data["rows"][0]["n_paired"] == 2


def test_power_of_two_real_runs(tiny_family: dict[str, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """Two `eft-eval run`s of tiny models, judged by a loopback judge, then `analyze power` on their folders."""
    with LoopbackServer(judge_answer) as server, contextlib.redirect_stderr(io.StringIO()):
        for name, tokens in (("a", "8"), ("b", "4")):
            assert main([*run_args(tiny_family, tmp_path / name, server.base_url), "--max-new-tokens", tokens,
                         "--no-progress", "--no-html"]) == 0
    capsys.readouterr()
    assert main(["analyze", "power", str(tmp_path / "a"), str(tmp_path / "b"), "--judge", "helpfulness",
                 "--effect", "1", "--json", "-o", str(tmp_path / "out")]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]

    def scores(name: str) -> dict[int, float]:
        rows = [json.loads(line) for line in (tmp_path / name / "samples.jsonl").read_text().splitlines()]
        return {r["doc_id"]: r["judgments"]["helpfulness"]["score"] for r in rows
                if r["judgments"]["helpfulness"]["status"] == "scored"}

    a, b = scores("a"), scores("b")
    d = np.array([b[k] - a[k] for k in a if k in b])
    assert row["n_paired"] == len(d) == 4
    assert row["mean_difference"] == pytest.approx(d.mean())
    assert row["sd_difference"] == pytest.approx(d.std(ddof=1))
    sd = d.std(ddof=1)
    assert sd > 0 and row["minimum_detectable_effect"] == pytest.approx(mde(sd, 4))
    assert row["below_mde"] is bool(abs(d.mean()) < mde(sd, 4))
    assert mde(sd, row["required_prompts"]) <= 1 < mde(sd, row["required_prompts"] - 1)


# -- scaling and frontier mark differences below their minimum detectable effect -----------------

def _noisy(base: np.ndarray, shift: float, seed: int) -> list[float]:
    return (base + shift + np.random.default_rng(seed).normal(0.0, 0.5, base.size)).tolist()


def test_scaling_marks_a_tiny_difference_below_the_mde(tmp_path: Path) -> None:
    base = np.random.default_rng(0).normal(5.0, 2.0, 80)
    runs = {role: load_run(write_run(tmp_path / role, {"helpfulness": _noisy(base, shift, seed)}), role)
            for seed, (role, shift) in enumerate((("small_ft", 0.0), ("large_ft", 2.0), ("up", 0.02),
                                                  ("down", 1.5)))}
    data = scaling_analysis([(None, runs)], settings=BootstrapSettings(n_resamples=200))
    rows = {r["config"]: r for r in data["rows"]}
    small = np.asarray(list(runs["small_ft"].scores("helpfulness").scores.values()))
    for config, below in (("up", True), ("down", False), ("large_ft", False)):
        other = np.asarray(list(runs[config].scores("helpfulness").scores.values()))
        d = other - small
        assert rows[config]["difference_from_small_ft"] == pytest.approx(d.mean())
        assert rows[config]["minimum_detectable_effect"] == pytest.approx(mde(d.std(ddof=1), 80))
        assert rows[config]["below_mde"] is below, config
    assert rows["small_ft"]["below_mde"] is None
    assert data["minimum_detectable_effect"]["power"] == 0.8
    from eft_eval.analysis._render import scaling_table

    up_line = next(line for line in scaling_table(data).splitlines() if " up " in line)
    assert "< MDE" in up_line
    down_line = next(line for line in scaling_table(data).splitlines() if " down " in line)
    assert "< MDE" not in down_line and "(MDE " in down_line


def test_frontier_marks_each_points_difference_from_the_first(tmp_path: Path) -> None:
    base = np.random.default_rng(1).normal(5.0, 2.0, 80)
    runs = [load_run(write_run(tmp_path / f"alpha{alpha}", {
        "helpfulness": _noisy(base, 2.0 * alpha, seed), "harm": _noisy(base * 0.1, 0.01 * alpha, seed + 10)},
        spec=model_spec(alpha=alpha))) for seed, alpha in enumerate((0.0, 0.5, 1.0))]
    data = frontier_analysis(runs, "helpfulness", "harm", settings=BootstrapSettings(n_resamples=200))
    first, _, last = data["points"]
    assert first["x_below_mde"] is None and first["x_difference"] is None
    x_first = np.asarray(list(runs[0].scores("helpfulness").scores.values()))
    x_last = np.asarray(list(runs[2].scores("helpfulness").scores.values()))
    assert last["x_difference"] == pytest.approx((x_last - x_first).mean())
    assert last["x_minimum_detectable_effect"] == pytest.approx(mde((x_last - x_first).std(ddof=1), 80))
    assert last["x_below_mde"] is False   # helpfulness: 2 points better, far above the MDE
    assert last["y_below_mde"] is True    # harm: 0.01 apart, below what 80 prompts detect
    from eft_eval.analysis._render import frontier_table

    last_line = next(line for line in frontier_table(data).splitlines() if line.startswith("alpha=1 "))
    assert "< MDE" in last_line and "(MDE " in last_line  # harm below, helpfulness not
