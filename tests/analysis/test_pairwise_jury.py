"""A pairwise judge with a jury (`eft-eval pairwise --judge-model a,b,c`): three loopback models that
answer the same pairs differently; each order's outcome is the jury's aggregation of the models'
outcomes, and the win rates follow from those outcomes."""

from __future__ import annotations

import html
import json
import re
import statistics
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pytest
from test_pairwise import FAST, config, read_pairs, strength, write_run

from eft_eval.analysis import pairwise
from eft_eval.cli import main
from eft_eval.report._studies import fmt
from eft_eval.stats import combine_orders
from eft_eval.testing import LoopbackServer, PairwiseJudge, Reply

N = 24
JURY = {  # three models that disagree: one fair, one biased to position A, one that often says tie
    "gpt-4o": PairwiseJudge(strength, seed=1),
    "gpt-4o-mini": PairwiseJudge(strength, first_position_bias=1.5, seed=2),
    "gpt-4.1-nano": PairwiseJudge(strength, tie_band=0.5, seed=3),
}
OUTCOME = {"A": 1.0, "B": 0.0, "tie": 0.5}


def script(body: dict[str, Any]) -> Reply:
    return JURY[body["model"]](body)


def asked(requests: list[dict[str, Any]]) -> dict[tuple[str, str, str], float]:
    """Each model's outcome for response A, by (model, response A, response B), from its own answer."""
    known = {}
    for body in requests:
        judge = JURY[body["model"]]
        prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
        verdict = judge.answer(body).rsplit("Verdict: ", 1)[1].strip()
        known[(body["model"], *judge.responses(prompt))] = OUTCOME[verdict]
    return known


@pytest.mark.parametrize("aggregation", [None, "median", "majority"])
def test_each_orders_outcome_is_the_jurys_aggregation_of_its_models(tmp_path: Path, aggregation: str | None) -> None:
    run = write_run(tmp_path / "run", {i: f"q={0.8 * ((i % 5) - 2):.1f} run answer {i}" for i in range(N)})
    ref = write_run(tmp_path / "ref", {i: f"q=0 reference answer {i}" for i in range(N)})
    with LoopbackServer(script) as server:
        results = pairwise([run], ref, tmp_path / "out", ["preference"],
                           config(server.base_url, tmp_path, judge_model=",".join(JURY),
                                  jury_aggregation=aggregation), bootstrap=FAST)
        requests = list(server.requests)
    assert len(requests) == 2 * N * len(JURY)  # every model asked both orders of every pair
    known = asked(requests)
    combine = {None: statistics.mean, "median": statistics.median}.get(aggregation)

    outcomes, no_verdict, disagreed, columns = [], 0, 0, []
    for pair in read_pairs(tmp_path / "out"):
        judgment = pair["judgments"]["preference"]
        a, b = pair["response"], pair["reference_response"]
        first = [known[(m, a, b)] for m in JURY]  # the run as A
        swapped = [1.0 - known[(m, b, a)] for m in JURY]  # the run as B, from the run's view
        for order, models in (("first", first), ("swapped", swapped)):
            verdict = judgment["verdicts"][order]
            assert list(verdict["models"]) == list(JURY) and verdict["judge_model"] == ",".join(JURY)
            own = [1.0 - s if order == "swapped" else s for s in models]  # each model's score for response A
            assert [verdict["models"][m]["score"] for m in JURY] == own
            assert [verdict["models"][m]["verdict"] for m in JURY] == [
                next(k for k, v in OUTCOME.items() if v == s) for s in own]
        columns += [[known[(m, a, b)] for m in JURY], [known[(m, b, a)] for m in JURY]]
        disagreed += len(set(first)) > 1 or len(set(swapped)) > 1
        if combine is not None:
            expected_first, expected_swapped = combine(first), combine(swapped)
        else:  # majority: the outcome at least two models gave, else no outcome for that order
            expected_first = next((o for o in first if first.count(o) >= 2), None)
            expected_swapped = next((o for o in swapped if swapped.count(o) >= 2), None)
        assert judgment["first"] == pytest.approx(expected_first)
        assert judgment["swapped"] == pytest.approx(expected_swapped)
        if expected_first is None or expected_swapped is None:
            assert judgment["outcome"] is None
            no_verdict += 1
            failed = judgment["verdicts"]["first" if expected_first is None else "swapped"]
            assert failed["status"] == "failed" and "the 3 jury models have no majority" in failed["error"]
            continue
        outcome = combine_orders(expected_first, expected_swapped, "tie")
        assert judgment["outcome"] == pytest.approx(outcome)
        outcomes.append(outcome)
    assert disagreed > N / 2  # the models do disagree, so the aggregation matters

    numbers = results["judges"]["preference"]["runs"]["run"]
    assert numbers["n_compared"] == len(outcomes) and numbers["n_no_verdict"] == no_verdict
    assert numbers["win_rate"]["value"] == pytest.approx(statistics.mean(outcomes))
    assert (numbers["wins"], numbers["ties"], numbers["losses"]) == (
        sum(o > 0.5 for o in outcomes), sum(o == 0.5 for o in outcomes), sum(o < 0.5 for o in outcomes))
    # None: each judge's own aggregation (the preference judge's mean)
    assert results["config"]["jury"] == {"models": list(JURY), "aggregation": aggregation}
    # The jury's agreement: alpha of the models' outcomes for response A, one item per order of each pair.
    jury = results["judges"]["preference"]["jury"]
    assert jury["models"] == list(JURY) and jury["aggregation"] == (aggregation or "mean")
    assert jury["agreement"]["level"] == "ordinal" and jury["agreement"]["n_items"] == 2 * N
    alpha = krippendorff.alpha(reliability_data=np.array(columns).T, level_of_measurement="ordinal")
    assert jury["agreement"]["krippendorff_alpha"]["value"] == pytest.approx(alpha)
    assert 0 < alpha < 1 and jury["agreement"]["krippendorff_alpha"]["ci_low"] < alpha
    if aggregation == "majority":
        assert no_verdict > 0  # A, B and tie from three models: no majority, the pair is not counted


def test_the_report_shows_the_jury_and_each_models_verdict(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {i: f"q={0.8 * ((i % 5) - 2):.1f} run answer {i}" for i in range(6)})
    ref = write_run(tmp_path / "ref", {i: f"q=0 reference answer {i}" for i in range(6)})
    with LoopbackServer(script) as server:
        results = pairwise([run], ref, tmp_path / "out", ["preference"],
                           config(server.base_url, tmp_path, judge_model=",".join(JURY)), bootstrap=FAST)
    assert main(["report", str(tmp_path / "out"), "--html", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text()
    alpha = results["judges"]["preference"]["jury"]["agreement"]["krippendorff_alpha"]
    assert (f"jury gpt-4o, gpt-4o-mini, gpt-4.1-nano (mean); Krippendorff&#39;s alpha of their verdicts "
            f"{fmt(alpha['value'], alpha['standard_error'])}") in page
    data = json.loads(html.unescape(re.search(  # type: ignore[union-attr]
        r'<script type="application/json" id="report-data">(.*?)</script>', page, re.DOTALL).group(1)))
    for row, pair in zip(data["pairs"]["rows"], read_pairs(tmp_path / "out")):
        first = pair["judgments"]["preference"]["verdicts"]["first"]
        assert row["j"]["preference"][2][1] == f"{fmt(first['score'])} for A (" + ", ".join(
            f"{m} {first['models'][m]['verdict']}" for m in JURY) + ")"
