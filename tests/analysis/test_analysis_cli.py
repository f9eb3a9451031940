"""`eft-eval analyze scaling|frontier|top-p|compare|agreement` as a user runs them: files written,
a table printed, bare samples.jsonl files accepted, bad input as one line without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from analysis_helpers import model_spec, write_run

from eft_eval.cli import main


@pytest.fixture
def scaling_runs(tmp_path: Path) -> dict[str, Path]:
    d = [-2.0, -1.0, 0.0, 1.0, 2.0, 0.5]
    return {role: write_run(tmp_path / role,
                            {"helpfulness": [shift + x for x in d], "factuality": [1.0, 0, 2, 0, 1, 0]})
            for role, shift in (("small-ft", 10.0), ("large-ft", 20.0), ("up", 18.0), ("down", 11.0))}


def test_analyze_scaling_prints_a_table_and_writes_every_file(tmp_path: Path, scaling_runs: dict[str, Path],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    # A bare samples.jsonl is a run too.
    code = main(["analyze", "scaling", "--small-ft", str(scaling_runs["small-ft"]), "--large-ft",
                 str(scaling_runs["large-ft"]),
                 "--up", str(scaling_runs["up"] / "samples.jsonl"), "--judge", "helpfulness", "--n-resamples",
                 "300", "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["scaling.csv", "scaling.json", "scaling.png", "scaling.svg"]
    data = json.loads((out / "scaling.json").read_text())
    up = next(r for r in data["rows"] if r["config"] == "up")
    assert up["normalized_improvement"] == pytest.approx(0.8) and data["n_paired"] == {"helpfulness": 6}
    assert "0.800 ±" in printed and "paired" in printed and "factuality" not in printed


def test_analyze_commands_write_their_files(tmp_path: Path, scaling_runs: dict[str, Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    small, up = str(scaling_runs["small-ft"]), str(scaling_runs["up"])
    assert main(["analyze", "compare", small, up, "--n-resamples", "300", "-o", str(out)]) == 0
    assert main(["analyze", "agreement", small, up, "--judge", "factuality", "--n-resamples",
                 "300", "-o", str(out)]) == 0
    assert "kappa" in capsys.readouterr().out
    alphas = [str(write_run(tmp_path / f"alpha{a}", {"helpfulness": [a, 2 * a, 1.0], "harmlessness": [1.0, a, 0.5]},
                            spec=model_spec(alpha=a))) for a in (0.0, 0.5, 1.0)]
    assert main(["analyze", "frontier", *alphas, "--x", "helpfulness", "--y", "harm", "--n-resamples", "300",
                 "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["analyze", "top-p", small, up, "-o", str(out), "--json"]) == 0
    assert [row["judge"] for row in json.loads(capsys.readouterr().out)["rows"]] == ["helpfulness", "factuality"] * 2
    for kind in ("compare", "agreement", "frontier", "top_p"):
        for suffix in ("json", "csv", "png", "svg"):
            assert (out / f"{kind}.{suffix}").stat().st_size > 0, (kind, suffix)
    frontier = json.loads((out / "frontier.json").read_text())
    assert [p["label"] for p in frontier["points"]] == ["alpha=0", "alpha=0.5", "alpha=1"]


@pytest.mark.parametrize(("args", "message"), [
    (["frontier", "{missing}", "--x", "helpfulness", "--y", "harm"], "no such run folder or samples file"),
    (["compare", "{small}", "{up}", "--judge", "harm"], "no judgments by judge 'harm'"),
    (["scaling", "--small-ft", "{small}", "--large-ft", "{up}", "--large-ft", "{up}"], "--large-ft is given 2 times"),
    # --n-resamples 1 is argparse's to refuse (exit 2): tests/test_cli_flags_checked.py
])
def test_bad_input_is_one_line(tmp_path: Path, scaling_runs: dict[str, Path], capsys: pytest.CaptureFixture[str],
                               args: list[str], message: str) -> None:
    paths = {"small": str(scaling_runs["small-ft"]), "up": str(scaling_runs["up"]), "missing": str(tmp_path / "nope")}
    code = main(["analyze", *[a.format(**paths) for a in args], "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
