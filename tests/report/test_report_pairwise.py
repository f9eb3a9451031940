"""The HTML report of pairwise comparisons, without a browser: the win-rate table, the Bradley-Terry
ranking and the figure from a pairwise folder's results.json, every pair with both verdicts in the
page's data, a pairwise folder given alone, and the study tables' `< MDE` marks (the browser test
checks the pair browser itself)."""

from __future__ import annotations

import html as html_module
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_helpers import pairwise_judge, write_pairwise, write_sweep

from eft_eval.cli import main
from eft_eval.report import collect, render_report
from eft_eval.report._studies import fmt
from eft_eval.testing import LoopbackServer


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("pairwise_report")
    sweep = write_sweep(root / "sweep", n_docs=6, lengths=True)
    (sweep / "sweep.json").write_text(json.dumps({"study": "my_frontier", "points": [
        {"label": label} for label in ("alpha=0.0", "alpha=0.5", "alpha=1.0")]}))
    with LoopbackServer(pairwise_judge()) as server:
        folder = write_pairwise(sweep, server.base_url)
    results = json.loads((folder / "results.json").read_text())
    pairs = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]
    out = root / "report.html"
    assert main(["report", str(sweep), "--html", str(out)]) == 0
    yield {"sweep": sweep, "folder": folder, "results": results, "pairs": pairs, "html": out.read_text()}


def _table(html: str, table_id: str) -> list[list[str]]:
    found = re.search(rf'<table[^>]*id="{re.escape(table_id)}"[^>]*>(.*?)</table>', html, re.DOTALL)
    assert found is not None, table_id
    body = found.group(1).split("<tbody>", 1)[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)
    return [[html_module.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)] for row in rows]


def _interval(estimate: dict[str, Any]) -> str:
    return f"{fmt(estimate['ci_low'])} to {fmt(estimate['ci_high'])}"


def test_the_win_rate_table_shows_each_runs_numbers_with_intervals(swept: dict[str, Any]) -> None:
    html, results = swept["html"], swept["results"]
    numbers = results["judges"]["preference"]
    rows = _table(html, "pairwise-table-0-preference")
    assert [row[0] for row in rows] == ["alpha=0.5", "alpha=1.0"]
    for row, run in zip(rows, ("alpha=0.5", "alpha=1.0")):
        mine = numbers["runs"][run]
        win, lc, flips = mine["win_rate"], mine["length_controlled_win_rate"], mine["position_inconsistency"]
        assert row[1:5] == [fmt(win["value"], win["standard_error"]), _interval(win),
                            fmt(lc["value"], lc["standard_error"]), _interval(lc)]
        assert row[5] == f"{mine['length_difference']['mean_tokens']:+.1f}"
        assert row[6] == f"{fmt(flips['value'], flips['standard_error'])} ({_interval(flips)})"
        assert row[7] == f"{mine['wins']} / {mine['ties']} / {mine['losses']}" and row[8] == "6 of 6"
    # The judge prefers run 2's answers: alpha=1.0 wins more often than alpha=0.5.
    assert numbers["runs"]["alpha=1.0"]["win_rate"]["value"] > numbers["runs"]["alpha=0.5"]["win_rate"]["value"]
    # Several runs: the Bradley-Terry ranking, best first, the reference marked.
    ranking = _table(html, "bradley-terry-0-preference")
    assert [row[1].replace(" (reference)", "") for row in ranking] == numbers["bradley_terry"]["ranking"]
    assert any(row[1].endswith("(reference)") and row[1].startswith("alpha=0.0") for row in ranking)
    # The figure: each run's win rate and LC win rate, clickable to its run (alpha=0.5 is run 1, alpha=1.0 run 2).
    figure = re.search(r'<figure class="plot pickable" id="pairwise-figure-0-preference">(.*?)</figure>', html,
                       re.DOTALL)
    assert figure is not None and "<svg" in figure.group(1)
    for run in (1, 2):
        assert figure.group(1).count(f'id="pairwise-0-preference__run{run}"') >= 2  # two markers per run
    assert '<a href="#pairwise">Win rates</a><a href="#pairs">Pairs</a>' in html


def test_every_pair_goes_to_the_pair_browser_with_both_verdicts_and_their_reasoning(swept: dict[str, Any]) -> None:
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', swept["html"], re.DOTALL)
    assert block is not None
    data = json.loads(block.group(1))["pairs"]
    assert data["groups"] == [{"id": 0, "reference": "alpha=0.0", "judges": ["preference"], "root": "pairwise",
                               "label": "alpha=0.5, alpha=1.0 vs alpha=0.0", "between": False}]
    assert len(data["rows"]) == len(swept["pairs"]) == 12
    for row, pair in zip(data["rows"], swept["pairs"]):
        judgment = pair["judgments"]["preference"]
        first, swapped = judgment["verdicts"]["first"], judgment["verdicts"]["swapped"]
        assert (row["r"], row["d"], row["a"], row["b"]) == (pair["run"], pair["doc_id"], pair["response"],
                                                            pair["reference_response"])
        assert row["j"]["preference"] == [judgment["outcome"], judgment["consistent"],
                                          ["scored", first["verdict"], first["reason"], ""],
                                          ["scored", swapped["verdict"], swapped["reason"], ""]]
    assert any(pair["judgments"]["preference"]["consistent"] is False for pair in swept["pairs"])  # the bias shows
    assert 'id="pair-list"' in swept["html"]


def test_a_pairwise_folder_given_alone_is_reported(swept: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "pairs.html"
    assert main(["report", str(swept["folder"]), "--html", str(out)]) == 0
    html = out.read_text()
    assert "<title>Pairwise report: pairwise</title>" in html
    assert len(_table(html, "pairwise-table-0-preference")) == 2
    assert 'id="sample-table"' not in html  # no runs given: no sample browser, the pair browser only
    block = re.search(r'id="report-data">(.*?)</script>', html, re.DOTALL)
    assert block is not None and len(json.loads(block.group(1))["pairs"]["rows"]) == 12


def test_study_tables_mark_differences_below_the_minimum_detectable_effect(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep")
    scaling = json.loads((sweep / "scaling.json").read_text())
    mde = {"difference_from_small_ft": None, "minimum_detectable_effect": None, "below_mde": None}
    scaling["rows"][0].update(mde)
    scaling["rows"][1].update(difference_from_small_ft=20.0, minimum_detectable_effect=5.5, below_mde=False)
    scaling["rows"][2].update(difference_from_small_ft=0.25, minimum_detectable_effect=5.5, below_mde=True)
    scaling["minimum_detectable_effect"] = {"alpha": 0.05, "power": 0.9, "test": "paired t"}
    (sweep / "scaling.json").write_text(json.dumps(scaling))
    frontier = json.loads((sweep / "frontier.json").read_text())
    for point, (dx, below) in zip(frontier["points"], [(None, None), (-0.5, True), (12.0, False)]):
        point.update(x_difference=dx, x_minimum_detectable_effect=None if dx is None else 4.0, x_below_mde=below,
                     y_difference=dx, y_minimum_detectable_effect=None if dx is None else 4.0, y_below_mde=below)
    (sweep / "frontier.json").write_text(json.dumps(frontier))
    html = render_report(collect([sweep]))
    rows = _table(html, "scaling-table")
    assert [row[-2] for row in rows] == ["-", "+20 (MDE 5.5)", "+0.25 < MDE 5.5"]
    assert ('<span class="below-mde" title="The paired difference from small_ft (+0.25) is smaller than the minimum '
            'detectable effect of these prompts (5.5: 90% power, two-sided alpha 0.05)') in html
    points = _table(html, "frontier-table")
    assert [row[-2:] for row in points] == [["-", "-"], ["-0.5 < MDE 4", "-0.5 < MDE 4"],
                                            ["+12 (MDE 4)", "+12 (MDE 4)"]]
    # Analyses written before the MDE was recorded keep their old columns.
    plain = render_report(collect([write_sweep(tmp_path / "old")]))
    assert 'id="scaling-table"' in plain and "Δ vs small_ft</th>" not in plain and 'class="below-mde"' not in plain
