"""`eft-eval pairwise --round-robin`: every two runs are also judged against each other, and
Bradley-Terry is fitted on all comparisons, against a loopback judge of known strengths."""

from __future__ import annotations

import contextlib
import io
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from test_pairwise import read_pairs, strength, write_run

from eft_eval.cli import main
from eft_eval.stats._pairwise import DEFAULT_BT_REGULARIZATION, ELO_SCALE
from eft_eval.testing import LoopbackServer, PairwiseJudge

N = 30
TRUE = {"strong": 1.2, "middle": 0.5, "weak": -0.6}  # the reference: 0
ORDER = ["strong", "middle", "ref", "weak"]


def runs(tmp_path: Path) -> tuple[list[Path], Path]:
    folders = [write_run(tmp_path / label, {i: f"q={q} {label} answer {i}" for i in range(N)})
               for label, q in TRUE.items()]
    return folders, write_run(tmp_path / "ref", {i: f"q=0 reference answer {i}" for i in range(N)})


def pairwise_cli(runs: list[Path], ref: Path, out: Path, url: str, *flags: str) -> str:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["pairwise", *map(str, runs), "--against", str(ref), "--output", str(out), "--base-url", url,
                     "--no-progress", "--n-resamples", "100", *flags])
    assert code == 0
    return stdout.getvalue()


def logit_fit(comparisons: list[tuple[str, str, float]], names: list[str]) -> dict[str, float]:
    """An independent maximum likelihood fit of the same model: a logistic regression of each outcome
    on (+1 for the first model, -1 for the second), with the same tiny L2 penalty."""
    index = {name: k for k, name in enumerate(names)}
    x = np.zeros((len(comparisons), len(names)))
    for row, (a, b, _) in enumerate(comparisons):
        x[row, index[a]], x[row, index[b]] = 1.0, -1.0
    y = np.array([outcome for _, _, outcome in comparisons])
    lam = DEFAULT_BT_REGULARIZATION

    def loss(s: np.ndarray) -> float:
        z = x @ s
        return float(np.sum(np.logaddexp(0, z) - y * z) + lam / 2 * s @ s)

    def gradient(s: np.ndarray) -> np.ndarray:
        return np.asarray(x.T @ (1 / (1 + np.exp(-(x @ s))) - y) + lam * s)

    def hessian(s: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-(x @ s)))
        return np.asarray((x * (p * (1 - p))[:, None]).T @ x + lam * np.eye(len(names)))

    fit = minimize(loss, np.zeros(len(names)), jac=gradient, hess=hessian, method="trust-exact",
                   options={"gtol": 1e-12})
    return {name: float(fit.x[index[name]] - fit.x[index["ref"]]) for name in names}


class Tables(HTMLParser):
    """Every <table id=...>'s rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: str | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.current = dict(attrs).get("id") or ""
            self.tables[self.current] = []
        elif tag == "tr" and self.current is not None:
            self.tables[self.current].append([])
        elif tag == "td" and self.current is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell is not None and self.current is not None:
            self.tables[self.current][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def test_a_round_robin_ranks_the_runs_by_all_comparisons(tmp_path: Path) -> None:
    folders, ref = runs(tmp_path)
    out = tmp_path / "out"
    with LoopbackServer(PairwiseJudge(strength, first_position_bias=0.3)) as server:
        # The default is unchanged: each run against the reference only.
        pairwise_cli(folders, ref, out, server.base_url)
        assert server.request_count == 2 * N * len(folders)
        plain = json.loads((out / "results.json").read_text())
        assert plain["round_robin"] is None and "between_runs" not in plain["judges"]["preference"]
        assert plain["judges"]["preference"]["bradley_terry"]["n_comparisons"] == N * len(folders)
        assert not (out / "run_pairs.jsonl").exists()

        # The round robin asks only what is new (each run against each other), never a pair again.
        printed = pairwise_cli(folders, ref, out, server.base_url, "--round-robin")
        pairs_of_runs = math.comb(len(folders), 2)
        assert server.request_count == 2 * N * (len(folders) + pairs_of_runs)
        pairwise_cli(folders, ref, out, server.base_url, "--round-robin")  # all from the folder's cache
        assert server.request_count == 2 * N * (len(folders) + pairs_of_runs)

    results = json.loads((out / "results.json").read_text())
    numbers = results["judges"]["preference"]
    assert results["judges"]["preference"]["runs"] == plain["judges"]["preference"]["runs"]  # vs ref: the same
    between = [json.loads(line) for line in (out / "run_pairs.jsonl").read_text().splitlines()]
    assert len(between) == N * pairs_of_runs
    assert [(p["run"], p["opponent"], p["matched"]) for p in results["round_robin"]["pairs"]] == [
        ("strong", "middle", N), ("strong", "weak", N), ("middle", "weak", N)]
    # Per two runs: the win rate is the mean outcome of the first run over their shared prompts.
    for entry in numbers["between_runs"]:
        outcomes = [p["judgments"]["preference"]["outcome"] for p in between
                    if (p["run"], p["reference"]) == (entry["run"], entry["opponent"])]
        assert entry["n_compared"] == len(outcomes) == N
        assert entry["win_rate"]["value"] == sum(outcomes) / N
    assert "strong vs middle" in printed and "run vs run" in printed

    # Bradley-Terry: every comparison, the true order, and the same strengths as an independent fit.
    fit = numbers["bradley_terry"]
    assert fit["ranking"] == ORDER
    assert fit["n_comparisons"] == N * (len(folders) + pairs_of_runs)
    comparisons = [(p["run"], p["reference"], p["judgments"]["preference"]["outcome"])
                   for p in read_pairs(out) + between]
    independent = logit_fit(comparisons, ORDER)
    for name in ORDER:
        assert abs((fit["scores"][name]["value"] - 1000) / ELO_SCALE - independent[name]) < 1e-6, name

    # The report's Bradley-Terry table still renders, in the fitted order.
    page = tmp_path / "report.html"
    assert main(["report", str(out), "--html", str(page)]) == 0
    parser = Tables()
    parser.feed(page.read_text())
    ranking = parser.tables["bradley-terry-0-preference"]
    assert [row[1].replace(" (reference)", "") for row in ranking if row] == ORDER


def test_runs_are_paired_with_each_other_on_the_prompts_they_share(tmp_path: Path) -> None:
    first = write_run(tmp_path / "first", {i: f"q=1 first {i}" for i in range(6)})
    second = write_run(tmp_path / "second", {i: f"q=0.5 second {i}" for i in range(2, 8)})
    third = write_run(tmp_path / "third", {i: f"q=0.2 third {i}" for i in range(6, 8)})
    ref = write_run(tmp_path / "ref", {i: f"q=0 ref {i}" for i in range(8)})
    with LoopbackServer(PairwiseJudge(strength)) as server:
        printed = pairwise_cli([first, second, third], ref, tmp_path / "out", server.base_url, "--round-robin")
        # Against the reference 6 + 6 + 2 prompts, first-second 4, second-third 2, first-third none.
        assert server.request_count == 2 * (6 + 6 + 2 + 4 + 2)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(p["run"], p["opponent"], p["matched"], p["run_only"], p["opponent_only"])
            for p in results["round_robin"]["pairs"]] == [
        ("first", "second", 4, 2, 2), ("first", "third", 0, 6, 2), ("second", "third", 2, 4, 0)]
    assert [(e["run"], e["opponent"], e["n_pairs"]) for e in results["judges"]["preference"]["between_runs"]] == [
        ("first", "second", 4), ("second", "third", 2)]
    assert "first vs third: 0 shared prompt(s) compared, 6 only in first, 2 only in third" in printed
