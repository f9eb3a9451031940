"""The report's numbers equal a hand computation on a six-item study with two annotators,
a tie, an inconsistent answer and one expert's gold labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from study_helpers import (
    item_ids_by_doc,
    judged_sample,
    write_potato_state,
    write_samples,
)

from eft_eval.cli import main
from eft_eval.stats import proportion_estimate

# doc_id -> judge score: judge labels (score >= 1) are F T T F F T.
JUDGE_SCORES = [0.0, 2.0, 1.0, 0.0, 0.0, 3.0]
# doc_id -> (count, yes/no) per annotator. Reduced by count: alice F T F T F T, bob F T F T T T.
ALICE = {0: ("0", "no"), 1: ("1", "yes"), 2: ("0", "no"), 3: ("1", "yes"), 4: ("0", "no"), 5: ("3 or more", "yes")}
BOB = {0: ("0", "no"), 1: ("2", "yes"), 2: ("0", "no"), 3: ("1", "no"), 4: ("1", "yes"), 5: ("2", "yes")}
# Majority: d0 F, d1 T, d2 F, d3 T, d4 tie, d5 T. Disagreements with the judge: d2, d3.
GOLD = {2: ("2", "yes"), 3: ("1", "yes")}  # d2: the judge was right; d3: the humans were


@pytest.fixture
def study(tmp_path: Path) -> Path:
    samples = write_samples(tmp_path / "samples.jsonl",
                            [judged_sample(d, "m", score=s) for d, s in enumerate(JUDGE_SCORES)])
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "6", "--out", str(project),
                 "--annotators-per-item", "2"]) == 0
    ids = item_ids_by_doc(project)
    write_potato_state(project, "alice", {ids[d]: a for d, a in ALICE.items()})
    write_potato_state(project, "bob", {ids[d]: a for d, a in BOB.items()})
    return project


def test_report_numbers_equal_hand_computation(study: Path, tmp_path: Path) -> None:
    ids = item_ids_by_doc(study)
    assert main(["human-study", "import", str(study)]) == 0
    adjudication = tmp_path / "adjudication"
    assert main(["human-study", "adjudicate", str(study), "--out", str(adjudication)]) == 0
    assert {i["item_id"] for i in json.loads((adjudication / "study.json").read_text())["items"]} == {ids[2], ids[3]}
    write_potato_state(adjudication, "expert", {ids[d]: a for d, a in GOLD.items()})
    assert main(["human-study", "import", str(adjudication)]) == 0
    out = tmp_path / "report"
    assert main(["human-study", "report", str(study), "--adjudication", str(adjudication), "--out", str(out)]) == 0
    r = json.loads((out / "report.json").read_text())

    assert (r["n_items"], r["n_labelled"], r["n_ties"], r["n_unannotated"], r["n_annotators"]) == (6, 5, 1, 0, 2)
    assert r["tied_item_ids"] == [ids[4]]
    # Labelled d0 d1 d2 d3 d5: judge F T T F T, humans F T F T T.
    assert r["confusion"]["matrix"] == [[2, 1], [1, 1]]
    assert r["agreement"]["value"] == pytest.approx(3 / 5)
    assert r["kappa"]["value"] == pytest.approx((0.6 - 0.52) / (1 - 0.52))  # p_e = .6*.6 + .4*.4
    assert r["judge_error_rate"]["value"] == pytest.approx(0.6) and r["human_error_rate"]["value"] == pytest.approx(0.6)
    assert r["answer_consistency"] == pytest.approx(11 / 12)  # bob on d3: one error, but "no"
    # The SE is the bootstrap of the per-item agreement indicator (items in project order) with
    # the report's seed.
    agrees = {0: True, 1: True, 2: False, 3: False, 5: True}
    doc_of = {item_id: doc for doc, item_id in ids.items()}
    direct = proportion_estimate([agrees[doc_of[i]] for i in sorted(doc_of) if doc_of[i] in agrees], seed=0)
    assert r["agreement"]["standard_error"] == pytest.approx(direct.standard_error)
    assert (r["agreement"]["ci_low"], r["agreement"]["ci_high"]) == pytest.approx((direct.ci_low, direct.ci_high))
    gold = r["gold"]
    assert gold["n_adjudicated"] == 2 and gold["n_gold_ties"] == 0
    assert gold["judge_matches_gold"]["value"] == pytest.approx(0.5)
    assert gold["humans_match_gold"]["value"] == pytest.approx(0.5)
    per = {a["annotator"]: a for a in r["annotators"]}
    assert per["alice"]["agreement_with_judge"]["value"] == pytest.approx(4 / 6)
    assert per["bob"]["agreement_with_judge"]["value"] == pytest.approx(3 / 6)
    assert per["alice"]["agreement_with_others"]["value"] == pytest.approx(5 / 6)
    assert per["alice"]["gold_accuracy"]["value"] == pytest.approx(1 / 2)  # d2 wrong, d3 right
    assert per["bob"]["gold_accuracy"]["n"] == 2

    markdown = (out / "report.md").read_text()
    assert "| Judge-human agreement rate | 0.600 ± " in markdown
    assert "| **Judge: error** | 2 | 1 |" in markdown and "| **Judge: no error** | 1 | 1 |" in markdown
    assert ids[4] in markdown  # the tied item is listed
    html = (out / "report.html").read_text()
    svg = (out / "confusion_matrix.svg").read_text()
    assert svg.strip() in html and ">2</text>" in svg and "Judge" in svg


def test_labels_can_come_from_the_yes_no_question(study: Path) -> None:
    ids = item_ids_by_doc(study)
    assert main(["human-study", "import", str(study), "--label-from", "yes_no"]) == 0
    labels = {json.loads(line)["item_id"]: json.loads(line)
              for line in (study / "labels.jsonl").read_text().splitlines()}
    # By yes/no, bob says "no" on d3: one vote each way, a tie.
    assert labels[ids[3]]["tie"] and labels[ids[3]]["label"] is None
    assert labels[ids[1]]["label"] is True and labels[ids[1]]["label_from"] == "yes_no"


def test_gold_ties_and_stale_adjudication(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = item_ids_by_doc(study)
    assert main(["human-study", "import", str(study)]) == 0
    adjudication = tmp_path / "adjudication"
    assert main(["human-study", "adjudicate", str(study), "--out", str(adjudication),
                 "--annotators-per-item", "2"]) == 0
    write_potato_state(adjudication, "expert1", {ids[2]: ("1", "yes"), ids[3]: ("0", "no")})
    write_potato_state(adjudication, "expert2", {ids[2]: ("0", "no"), ids[3]: ("0", "no")})
    assert main(["human-study", "import", str(adjudication)]) == 0
    out = tmp_path / "report"
    assert main(["human-study", "report", str(study), "--adjudication", str(adjudication), "--out", str(out)]) == 0
    gold = json.loads((out / "report.json").read_text())["gold"]
    # d2: the experts split, no gold; d3: gold "no error", the judge's label.
    assert (gold["n_adjudicated"], gold["n_gold_ties"], gold["tied_item_ids"]) == (1, 1, [ids[2]])
    assert gold["judge_matches_gold"]["value"] == 1.0 and gold["humans_match_gold"]["value"] == 0.0
    assert "Disagreements the experts tied on" in (out / "report.md").read_text()
    # Reporting on the adjudication project itself is a mistake with a clear message.
    assert main(["human-study", "report", str(adjudication), "--out", str(tmp_path / "r2")]) == 2
    assert "is an adjudication project" in capsys.readouterr().err

    # The crowd labels change after adjudication (bob now says d3 has no error: a tie): the gold no
    # longer answers the same question, and the report refuses to mix them.
    write_potato_state(study, "bob", {ids[d]: a for d, a in BOB.items()} | {ids[3]: ("0", "no")})
    assert main(["human-study", "import", str(study), "--force"]) == 0
    assert main(["human-study", "report", str(study), "--adjudication", str(adjudication), "--out",
                 str(out), "--force"]) == 2
    assert repr(ids[3]) in capsys.readouterr().err


def test_nothing_to_adjudicate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = write_samples(tmp_path / "samples.jsonl", [judged_sample(d, "m", score=float(d % 2)) for d in range(4)])
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "4", "--out", str(project)]) == 0
    ids = item_ids_by_doc(project)
    write_potato_state(project, "alice", {ids[d]: ("1", "yes") if d % 2 else ("0", "no") for d in range(4)})
    assert main(["human-study", "import", str(project)]) == 0
    assert main(["human-study", "adjudicate", str(project), "--out", str(tmp_path / "adj")]) == 2
    assert "nothing to adjudicate" in capsys.readouterr().err
    assert not (tmp_path / "adj").exists()
