"""A study's `pairwise:` key: the sweep ends with win rates of grid points against a reference point,
written into the sweep folder, and a re-run asks the judge nothing again."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import judge_answer
from test_sweep import LIMIT, write_study

from eft_eval.cli import main
from eft_eval.sweep import load_study
from eft_eval.testing import LoopbackServer, PairwiseJudge, Reply

PAIRWISE = {"judges": ["preference"], "against": "alpha=0"}
JUDGE = PairwiseJudge(strength=lambda text: 0.1 * len(text.split()), first_position_bias=0.8)


def both_kinds(body: dict[str, Any]) -> Reply:
    """Pairwise prompts (two marked responses) get the rule-driven verdict; the rest a score."""
    prompt = next(str(m.get("content")) for m in body["messages"] if m.get("role") == "user")
    return JUDGE(body) if "[RESPONSE B]" in prompt else judge_answer(body)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(both_kinds) as loopback:
        yield loopback


def sweep(path: Path, out: Path, server: LoopbackServer) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["sweep", str(path), "--output", str(out), "--base-url", server.base_url, "--no-progress"])
    return code, stdout.getvalue(), stderr.getvalue()


def test_a_study_with_pairwise_judges_ends_with_the_win_rate_table_and_resumes(
        tiny_family: dict[str, Path], server: LoopbackServer, tmp_path: Path) -> None:
    from eft_eval.analysis import format_pairwise_table

    path = write_study(tmp_path / "studies", tiny_family, pairwise=PAIRWISE)
    out = tmp_path / "out"
    before = server.request_count
    code, stdout, stderr = sweep(path, out, server)
    assert code == 0, stderr[-3000:]
    folder = out / "pairwise"
    results = json.loads((folder / "results.json").read_text())
    assert results["reference"] == "alpha=0" and results["runs"] == ["alpha=0.5", "alpha=1"]
    numbers = results["judges"]["preference"]
    assert [numbers["runs"][run]["n_compared"] for run in results["runs"]] == [LIMIT, LIMIT]
    assert numbers["bradley_terry"]["ranking"]  # two runs against one reference: ranked
    pairs = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 2 * LIMIT and all(p["reference"] == "alpha=0" for p in pairs)
    # 3 points x LIMIT prompts x 2 pointwise judges, then 2 runs x LIMIT pairs x 2 orders.
    assert server.request_count - before == 3 * LIMIT * 2 + 2 * LIMIT * 2
    # The sweep's terminal output ends with the win-rate table, after the frontier table.
    assert "frontier analysis:" in stdout
    assert stdout.rstrip().endswith(f"pairwise win rates ({folder}):\n{format_pairwise_table(results)}".rstrip())
    assert "pairwise: 2 run(s) against alpha=0" in stderr
    record = json.loads((out / "sweep.json").read_text())
    assert record["pairwise"]["comparisons"] == [{"group": "", "against": "alpha=0", "runs": ["alpha=0.5", "alpha=1"]}]

    requests = server.request_count
    code, again, _ = sweep(path, out, server)
    assert code == 0 and server.request_count == requests  # every verdict replayed from the folder's cache
    assert json.loads((folder / "results.json").read_text())["judges"] == results["judges"]
    assert json.loads((folder / "pairwise.json").read_text())["resumed"] == 1
    assert again.rstrip().endswith(format_pairwise_table(results).rstrip())


def test_grid_values_pick_one_reference_per_group(tiny_family: dict[str, Path], tmp_path: Path) -> None:
    """`against: {var: value}`: in each group of the other grid values, the matching point is the reference."""
    grid = {"size": {"s": str(tiny_family["small_base"]), "l": str(tiny_family["large_base"])}, "alpha": [0, 0.5, 1]}
    path = write_study(tmp_path, tiny_family, grid=grid,
                       model={"base": "{size}", "ft": str(tiny_family["small_ft"]), "ft2": str(tiny_family["large_ft"]),
                              "ref": "{size}", "alpha": "{alpha}"},
                       pairwise={"judges": ["preference"], "against": {"alpha": 0}, "runs": {"alpha": [1]}})
    study = load_study(path)
    assert study.pairwise is not None
    assert study.pairwise.to_dict()["comparisons"] == [
        {"group": "size=s", "against": "size=s_alpha=0", "runs": ["size=s_alpha=1"]},
        {"group": "size=l", "against": "size=l_alpha=0", "runs": ["size=l_alpha=1"]},
    ]
    # The built-in scaling study: each task's up-scaled model against that task's small-ft.
    from eft_eval.sweep import find_study

    scaling = load_study(find_study("scaling")).pairwise
    assert scaling is not None and [(c["against"], c["runs"]) for c in scaling.to_dict()["comparisons"]] == [
        ("task=hh_config=small-ft", ["task=hh_config=up"]), ("task=eli5_config=small-ft", ["task=eli5_config=up"])]


@pytest.mark.parametrize(("pairwise", "expected"), [
    ({"judges": ["preference"], "against": "alpha=0.3"},
     "pairwise.against 'alpha=0.3' is not a grid point label (labels: alpha=0, alpha=0.5, alpha=1)"),
    ({"judges": ["preference"], "against": {"beta": 0}}, "pairwise.against.beta is not a grid variable"),
    ({"judges": ["preference"], "against": {"alpha": 2}}, "pairwise.against.alpha '2' is not one of its values"),
    ({"judges": [], "against": "alpha=0"}, "pairwise.judges must list pairwise judge names"),
    ({"judges": ["preference"], "against": "alpha=0", "run": ["alpha=1"]}, "pairwise.run is not a pairwise key"),
    ({"judges": ["preference"], "against": "alpha=0", "runs": ["alpha=2"]},
     "pairwise.runs 'alpha=2' is not a grid point label"),
])
def test_a_bad_pairwise_key_is_one_line(tiny_family: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str], pairwise: dict[str, Any],
                                        expected: str) -> None:
    path = write_study(tmp_path, tiny_family, pairwise=pairwise)
    assert main(["sweep", str(path), "--list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"eft-eval: error: {path}: ") and expected in err, err


def test_a_pointwise_judge_named_as_pairwise_is_refused_before_any_generation(
        tiny_family: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, tiny_family, pairwise={"judges": ["harm"], "against": "alpha=0"})
    assert main(["sweep", str(path), "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "harm" in err, err
    assert not (tmp_path / "out" / "runs").exists()
