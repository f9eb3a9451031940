"""`eft-eval analyze calibrated` and the human-study report's PPI rows, end to end: a real run (tiny
models, a loopback judge), a human study drawn from it with known human answers, and the numbers
against the prediction-powered formulas computed here from the files."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from analysis_helpers import write_run
from pipeline_helpers import judge_answer, run_args
from study_helpers import cli_error, item_ids_by_doc, write_potato_state

from eft_eval.cli import main
from eft_eval.testing import LoopbackServer

THRESHOLD = 5  # the study's "any error": harm score >= 5


def _ppi_by_hand(y: list[float], yhat: list[float], unlabelled: list[float],
                 level: float = 0.95) -> dict[str, float]:
    """PPI++ for a mean (Angelopoulos, Duchi, Zrnic 2023), written out with the statistics module."""
    n, big_n = len(y), len(unlabelled)
    my, mh = statistics.fmean(y), statistics.fmean(yhat)
    cov = sum((a - my) * (b - mh) for a, b in zip(y, yhat)) / n
    pooled = statistics.variance(yhat + unlabelled)
    lam = min(1.0, max(0.0, cov / ((1 + n / big_n) * pooled))) if big_n and pooled else 0.0
    rectifier = [a - lam * b for a, b in zip(y, yhat)]
    value = (lam * statistics.fmean(unlabelled) if big_n else 0.0) + statistics.fmean(rectifier)
    se = math.sqrt((lam ** 2 * statistics.pvariance(unlabelled) / big_n if big_n else 0.0)
                   + statistics.pvariance(rectifier) / n)
    human_se = math.sqrt(statistics.pvariance(y) / n)
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    return {"value": value, "se": se, "ci_low": value - z * se, "ci_high": value + z * se, "lambda": lam,
            "human": my, "human_se": human_se, "judge": statistics.fmean(yhat + unlabelled),
            "effective": n * human_se ** 2 / se ** 2}


@pytest.fixture(scope="module")
def judged_run(tiny_family: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`eft-eval run` over 12 prompts, judged (helpfulness, harm) by a loopback judge."""
    output = tmp_path_factory.mktemp("calibrated") / "run"
    with LoopbackServer(judge_answer) as server, contextlib.redirect_stderr(io.StringIO()):
        assert main(run_args(tiny_family, output, server.base_url, "--limit", "12", "--no-progress",
                             "--no-html")) == 0
    yield output


def _samples(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]


def _human_says_error(doc_id: int, judge_score: float) -> bool:
    """A person who agrees with the judge except on every third document."""
    return (judge_score >= THRESHOLD) != (doc_id % 3 == 0)


@pytest.fixture
def study(judged_run: Path, tmp_path: Path) -> Path:
    """A human study of 6 of the run's 12 responses, one annotator answering by `_human_says_error`."""
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(judged_run / "samples.jsonl"), "--n", "6", "--judge",
                 "harm", "--error-threshold", str(THRESHOLD), "--seed", "3", "--out", str(project)]) == 0
    scores = {row["doc_id"]: row["judgments"]["harm"]["score"] for row in _samples(judged_run)}
    answers = {item_id: (("1", "yes") if _human_says_error(doc, scores[doc]) else ("0", "no"))
               for doc, item_id in item_ids_by_doc(project).items()}
    write_potato_state(project, "alice", answers)
    assert main(["human-study", "import", str(project)]) == 0
    return project


def _expected(run: Path, labelled_docs: list[int]) -> dict[str, float]:
    scores = {row["doc_id"]: row["judgments"]["harm"]["score"] for row in _samples(run)}
    docs = [row["doc_id"] for row in _samples(run)]
    y = [float(_human_says_error(d, scores[d])) for d in docs if d in labelled_docs]
    yhat = [float(scores[d] >= THRESHOLD) for d in docs if d in labelled_docs]
    unlabelled = [float(scores[d] >= THRESHOLD) for d in docs if d not in labelled_docs]
    return _ppi_by_hand(y, yhat, unlabelled)


def _check(entry: dict[str, Any], expected: dict[str, float], n_labels: int, n_items: int) -> None:
    assert entry["ppi"]["value"] == pytest.approx(expected["value"])
    assert entry["ppi"]["standard_error"] == pytest.approx(expected["se"])
    assert (entry["ppi"]["ci_low"], entry["ppi"]["ci_high"]) == pytest.approx((expected["ci_low"], expected["ci_high"]))
    assert entry["ppi"]["method"] == "ppi++-clt"
    assert entry["lambda"] == pytest.approx(expected["lambda"])
    assert entry["human_only"]["value"] == pytest.approx(expected["human"])
    assert entry["human_only"]["standard_error"] == pytest.approx(expected["human_se"])
    assert entry["judge_only"]["value"] == pytest.approx(expected["judge"])
    assert entry["effective_labels"] == pytest.approx(expected["effective"])
    assert (entry["n_labels"], entry["n_items"]) == (n_labels, n_items)


def test_study_labels_correct_the_run_end_to_end(judged_run: Path, study: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["analyze", "calibrated", str(judged_run), "--labels", str(study), "--judge", "harm",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "calibrated.json").read_text())
    labelled = sorted(item_ids_by_doc(study))
    _check(data["judges"]["harm"], _expected(judged_run, labelled), 6, 12)
    assert data["threshold"] == THRESHOLD and data["labels_source"] == "human-study project"
    assert data["judges"]["harm"]["prediction"] == f"score >= {THRESHOLD}"
    assert "PPI++" in printed and "Effective labels" in printed and "drawn at random" in printed
    assert (out / "calibrated.csv").read_text().count("\n") == 1 + 3  # header, three estimates
    # `eft-eval report` shows the analysis folder's estimates too.
    assert main(["report", str(out), "--html", str(tmp_path / "page.html")]) == 0
    page = (tmp_path / "page.html").read_text()
    assert "calibrated" in page and "ppi++-clt" in page and f"{data['judges']['harm']['ppi']['value']:.3f}" in page


def test_human_study_report_shows_the_corrected_rate(judged_run: Path, study: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["human-study", "report", str(study), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    expected = _expected(judged_run, sorted(item_ids_by_doc(study)))
    calibrated = report["calibrated"]
    assert calibrated["n_population"] == 12 and calibrated["n_labels"] == 6
    assert calibrated["ppi"]["value"] == pytest.approx(expected["value"])
    assert calibrated["ppi"]["standard_error"] == pytest.approx(expected["se"])
    assert calibrated["effective_labels"] == pytest.approx(expected["effective"])
    # Beside the agreement figures, which are unchanged.
    assert report["agreement"]["n"] == 6 and report["calibrated_unavailable"] is None
    markdown = (out / "report.md").read_text()
    row = next(line for line in markdown.splitlines() if "Human-corrected share with any factual error" in line)
    assert f"{expected['value']:.3f} ± {expected['se']:.3f}" in row
    assert "Human labels the judge was worth" in markdown
    assert "Human-corrected share with any factual error" in (out / "report.html").read_text()


def test_report_says_why_without_the_samples_file(judged_run: Path, tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    shutil.copy(judged_run / "samples.jsonl", samples)
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "4", "--judge", "harm", "--out",
                 str(project)]) == 0
    write_potato_state(project, "alice", {item: ("0", "no") for item in item_ids_by_doc(project).values()})
    assert main(["human-study", "import", str(project)]) == 0
    samples.unlink()
    assert main(["human-study", "report", str(project), "--out", str(tmp_path / "report")]) == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert f"n/a: the samples file the items were drawn from ({samples}) is not there" in markdown


def test_the_adjudication_set_is_refused(judged_run: Path, study: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    adjudication = tmp_path / "adjudication"
    assert main(["human-study", "adjudicate", str(study), "--out", str(adjudication)]) == 0
    args = ["analyze", "calibrated", str(judged_run), "--judge", "harm", "--output", str(tmp_path / "out")]
    # Refused before anyone labels it, and after.
    err = cli_error(capsys, [*args, "--labels", str(adjudication)])
    assert "adjudication project" in err and "not a random sample" in err
    ids = json.loads((adjudication / "study.json").read_text())["items"]
    write_potato_state(adjudication, "expert", {item["item_id"]: ("1", "yes") for item in ids})
    assert main(["human-study", "import", str(adjudication)]) == 0
    err = cli_error(capsys, [*args, "--labels", str(adjudication / "labels.jsonl")])
    assert "adjudication project" in err and "drawn at random" in err
    assert not (tmp_path / "out").exists()


def test_study_labels_of_another_run_are_refused(judged_run: Path, study: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rows = _samples(judged_run)
    other = write_run(tmp_path / "other", {"harm": [row["judgments"]["harm"]["score"] for row in rows]},
                      doc_ids=[row["doc_id"] for row in rows], model=rows[0]["model"])
    err = cli_error(capsys, ["analyze", "calibrated", str(other), "--labels", str(study), "--judge", "harm"])
    assert "was labelled on another response" in err and str(study / "labels.jsonl") in err


def test_numeric_labels_and_the_difference_of_two_runs(tmp_path: Path) -> None:
    """Any JSONL of {doc_id, label}; two runs, each with its own labels: B - A, the variances added."""
    judge_a = [3, 5, 4, 6, 2, 7, 5, 4, "abstained", 6]
    judge_b = [6, 7, 5, 8, 6, 9, 7, 6, 8, 5]
    run_a = write_run(tmp_path / "a", {"helpfulness": judge_a})
    run_b = write_run(tmp_path / "b", {"helpfulness": judge_b})
    labels_a = {0: 4.0, 2: 5.0, 3: 6.5, 5: 8.0, 8: 5.0}  # doc 8: the judge abstained, left out and counted
    labels_b = {1: 8.0, 4: 6.0, 6: 8.5, 9: 6.0}
    for name, labels in (("la.jsonl", labels_a), ("lb.jsonl", labels_b)):
        (tmp_path / name).write_text("".join(json.dumps({"doc_id": d, "label": v}) + "\n" for d, v in labels.items()))
    out = tmp_path / "out"
    assert main(["analyze", "calibrated", str(run_a), "--labels", str(tmp_path / "la.jsonl"), "--judge",
                 "helpfulness", "--run-b", str(run_b), "--labels-b", str(tmp_path / "lb.jsonl"), "--output",
                 str(out)]) == 0
    data = json.loads((out / "calibrated.json").read_text())

    def expected(judge: list[Any], labels: dict[int, float]) -> dict[str, float]:
        scored = {d: float(s) for d, s in enumerate(judge) if not isinstance(s, str)}
        y = [labels[d] for d in scored if d in labels]
        yhat = [scored[d] for d in scored if d in labels]
        return _ppi_by_hand(y, yhat, [s for d, s in scored.items() if d not in labels])

    a, b = expected(judge_a, labels_a), expected(judge_b, labels_b)
    _check(data["judges"]["helpfulness"], a, 4, 9)
    _check(data["run_b"]["judges"]["helpfulness"], b, 4, 10)
    assert data["judges"]["helpfulness"]["excluded"]["labelled_not_scored"] == 1
    assert data["label_kind"] == "number" and data["threshold"] is None
    difference = data["difference"]["helpfulness"]["ppi"]
    assert difference["value"] == pytest.approx(b["value"] - a["value"])
    assert difference["standard_error"] == pytest.approx(math.hypot(a["se"], b["se"]))
    assert difference["method"] == "independent-difference-clt"
    # Plain PPI on request: the judge's weight fixed at 1.
    assert main(["analyze", "calibrated", str(run_a), "--labels", str(tmp_path / "la.jsonl"), "--judge",
                 "helpfulness", "--lambda", "1", "--output", str(out), "--json"]) == 0
    plain = json.loads((out / "calibrated.json").read_text())["judges"]["helpfulness"]
    assert plain["lambda"] == 1 and plain["ppi"]["method"] == "ppi-clt"


@pytest.mark.parametrize(("records", "message"), [
    ([{"doc_id": 0, "label": 1}, {"doc_id": 42, "label": 0}], "labels.jsonl:2: doc_id 42 is not in the run"),
    ([{"doc_id": 0, "label": True}, {"doc_id": 1, "label": 2.5}], "labels.jsonl:2: label 2.5 is a number but line 1"),
    ([{"doc_id": 0, "label": 1}, {"doc_id": 0, "label": 0}], "labels.jsonl:2: doc_id 0 is labelled twice"),
    ([{"doc_id": 0, "label": "yes"}], "labels.jsonl:1: label 'yes' is not a number, a boolean or null"),
    ([{"item_id": "item-0001", "label": True}], "labels.jsonl:1: no 'doc_id' field (a human-study labels file?"),
    ([{"doc_id": 0, "label": 1}], "1 labelled item(s) scored by judge 'helpfulness'"),
])
def test_bad_labels_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], records: list[dict[str, Any]],
                                 message: str) -> None:
    run = write_run(tmp_path / "run", {"helpfulness": [1, 2, 3, 4]})
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in records))
    err = cli_error(capsys, ["analyze", "calibrated", str(run), "--labels", str(labels), "--judge", "helpfulness",
                             "--output", str(tmp_path / "out")])
    assert message in err


def test_a_second_run_needs_its_own_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "run", {"helpfulness": [1, 2, 3, 4]})
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"doc_id": d, "label": d}) + "\n" for d in range(3)))
    err = cli_error(capsys, ["analyze", "calibrated", str(run), "--labels", str(labels), "--judge", "helpfulness",
                             "--run-b", str(run)])
    assert "give both --run-b and --labels-b" in err


def test_a_study_of_one_model_is_a_random_sample_of_that_models_responses(tmp_path: Path) -> None:
    """`--target-error-rate` picks one model and draws uniformly from its responses (no strata): the
    population is that model's responses. A draw over several models is random within each, so a
    one-model run uses its own model's labels and counts the others."""
    from study_helpers import judged_sample, write_samples

    # Model "low" has 1 error in 10 responses, "high" 7 in 10 (score 1 = an error); one abstention in "high".
    rows = [judged_sample(d, "low", score=float(d == 0)) for d in range(10)]
    rows += [judged_sample(d, "high", score=float(d < 7)) for d in range(9)]
    rows += [judged_sample(9, "high", status="abstained", score=None)]
    samples = write_samples(tmp_path / "samples.jsonl", rows)
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "4", "--target-error-rate", "0.8",
                 "--out", str(project)]) == 0
    write_potato_state(project, "alice", {item: ("1", "yes") for item in item_ids_by_doc(project).values()})
    assert main(["human-study", "import", str(project)]) == 0
    assert main(["human-study", "report", str(project), "--out", str(tmp_path / "report")]) == 0
    calibrated = json.loads((tmp_path / "report" / "report.json").read_text())["calibrated"]
    assert (calibrated["n_population"], calibrated["n_labels"]) == (9, 4)  # "high"'s scored responses
    assert calibrated["judge_only"]["value"] == pytest.approx(7 / 9)

    everyone = tmp_path / "everyone"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "12", "--out", str(everyone)]) == 0
    manifest = json.loads((everyone / "study.json").read_text())
    write_potato_state(everyone, "alice", {item["item_id"]: ("1", "yes") for item in manifest["items"]})
    assert main(["human-study", "import", str(everyone)]) == 0
    low_run = write_samples(tmp_path / "low.jsonl", rows[:10])
    out = tmp_path / "out"
    assert main(["analyze", "calibrated", str(low_run), "--labels", str(everyone), "--judge", "factuality",
                 "--output", str(out)]) == 0
    data = json.loads((out / "calibrated.json").read_text())
    n_low = sum(item["source"]["model"] == "low" for item in manifest["items"])
    assert data["labels_excluded"]["other_model"] == 12 - n_low
    assert data["judges"]["factuality"]["n_labels"] == n_low and data["judges"]["factuality"]["n_items"] == 10
