"""The HTML report of a round-robin pairwise folder (`eft-eval pairwise --round-robin`): the run-vs-run
win-rate table under the Bradley-Terry ranking holds results.json's `between_runs` numbers, and the
pair browser's comparison picker offers each two runs' pairs from run_pairs.jsonl."""

from __future__ import annotations

import html as html_module
import json
import re
from pathlib import Path

from report_helpers import pairwise_judge, write_run, write_sweep
from test_report_pairwise import _interval, _table

from eft_eval.analysis import pairwise
from eft_eval.cli import main
from eft_eval.judging import JudgeConfig
from eft_eval.report._studies import fmt
from eft_eval.testing import LoopbackServer


def test_a_round_robin_report_shows_run_vs_run_win_rates_and_their_pairs(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", n_docs=6, lengths=True)
    third = write_run(sweep / "runs" / "third", 3, 6, lengths=True)  # a third run, as weak as the reference
    folder = tmp_path / "pairwise"
    with LoopbackServer(pairwise_judge()) as server:
        pairwise([sweep / "runs" / "alpha=0.5", sweep / "runs" / "alpha=1.0", third],
                 sweep / "runs" / "alpha=0.0", folder, ["preference"],
                 JudgeConfig(base_url=server.base_url, progress=False), round_robin=True)
    results = json.loads((folder / "results.json").read_text())
    run_pairs = [json.loads(line) for line in (folder / "run_pairs.jsonl").read_text().splitlines()]
    out = tmp_path / "report.html"
    assert main(["report", str(folder), "--html", str(out)]) == 0
    html = out.read_text()

    between = results["judges"]["preference"]["between_runs"]
    assert [(b["run"], b["opponent"]) for b in between] == [("alpha=0.5", "alpha=1.0"), ("alpha=0.5", "third"),
                                                           ("alpha=1.0", "third")]
    rows = _table(html, "run-vs-run-0-preference")
    assert [row[0] for row in rows] == [f"{b['run']} vs {b['opponent']}" for b in between]
    for row, mine in zip(rows, between):
        win, lc, flips = mine["win_rate"], mine["length_controlled_win_rate"], mine["position_inconsistency"]
        assert row[1:5] == [fmt(win["value"], win["standard_error"]), _interval(win),
                            fmt(lc["value"], lc["standard_error"]), _interval(lc)]
        assert row[5] == f"{mine['length_difference']['mean_tokens']:+.1f}"
        assert row[6] == f"{fmt(flips['value'], flips['standard_error'])} ({_interval(flips)})"
        assert row[7:] == [f"{mine['wins']} / {mine['ties']} / {mine['losses']}", "6 of 6", "0"]
    # The judge prefers run 2's (alpha=1.0's) answers: alpha=0.5 loses to it more than it wins.
    assert between[0]["win_rate"]["value"] < 0.5 < between[2]["win_rate"]["value"]
    # The run-vs-run table comes after the Bradley-Terry ranking (fitted on all comparisons).
    assert html.index('id="bradley-terry-0-preference"') < html.index('id="run-vs-run-0-preference"')

    # The picker: the comparison against the reference, then each two runs that were judged.
    picker = re.search(r'<select id="pair-group">(.*?)</select>', html, re.DOTALL)
    assert picker is not None
    options = [(value, html_module.unescape(text)) for value, text in
               re.findall(r'<option value="(\d+)">(.*?)</option>', picker.group(1))]
    assert options == [("0", "alpha=0.5, alpha=1.0, third vs alpha=0.0"),
                       *((str(k), f"{b['run']} vs {b['opponent']} (run vs run)") for k, b in enumerate(between, 1))]
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html,
                                re.DOTALL).group(1))  # type: ignore[union-attr]
    groups, pair_rows = data["pairs"]["groups"], data["pairs"]["rows"]
    assert [g["between"] for g in groups] == [False, True, True, True]
    for group, mine in zip(groups[1:], between):
        shown = [row for row in pair_rows if row["g"] == group["id"]]
        stored = [row for row in run_pairs if (row["run"], row["reference"]) == (mine["run"], mine["opponent"])]
        assert group["reference"] == mine["opponent"] and len(shown) == len(stored) == 6
        assert [(row["d"], row["a"], row["b"], row["j"]["preference"][0]) for row in shown] == [
            (row["doc_id"], row["response"], row["reference_response"], row["judgments"]["preference"]["outcome"])
            for row in stored]
        # Each group's outcomes are the win rate's wins and losses.
        outcomes = [row["j"]["preference"][0] for row in shown]
        assert (outcomes.count(1.0), outcomes.count(0.5), outcomes.count(0.0)) == (
            mine["wins"], mine["ties"], mine["losses"])
