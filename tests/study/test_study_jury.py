"""A human study of a jury's judge (`--judge-model a,b,c`): the report gives the jury's agreement
with the humans and each jury model's, equal to a computation by hand from the judged samples;
`--judge JUDGE@MODEL` studies one model of the jury; a single-model study gets no jury figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from study_helpers import cli_error, item_ids_by_doc, judged_sample, write_potato_state, write_samples

from eft_eval.cli import main
from eft_eval.judging import JudgeConfig, judge_files
from eft_eval.stats import proportion_estimate
from eft_eval.testing import LoopbackServer, Reply

N = 12
JURY = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-nano")


def factuality(model: str, i: int) -> int | None:
    """Each model's count of errors in item i; gpt-4.1-nano abstains on item 5."""
    if model == "gpt-4.1-nano" and i == 5:
        return None
    return {"gpt-4o": i % 3, "gpt-4o-mini": (i % 4) // 2, "gpt-4.1-nano": 2 * (i % 2)}[model]


def human_error(i: int) -> bool:
    return i % 3 != 0 or i == 9


def script(body: dict[str, Any]) -> Reply:
    prompt = body["messages"][0]["content"]
    i = int(prompt.split("Answer number ")[1].split(".")[0])
    score = factuality(body["model"], i)
    return Reply(text=f"Reason: item {i}.\nScore: {'None' if score is None else score}")


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("jury-study")
    inputs = tmp / "in.jsonl"
    inputs.write_text("".join(json.dumps({"doc_id": i, "task": "eli5", "model": "m", "query": f"Q{i}?",
                                          "response": f"Answer number {i}."}) + "\n" for i in range(N)))
    with LoopbackServer(script) as server:
        judge_files([inputs], ["factuality"], tmp / "run",
                    JudgeConfig(base_url=server.base_url, api_key="sk-test", cache_path=tmp / "c.sqlite",
                                progress=False, judge_model=",".join(JURY)))
    return tmp / "run" / "samples.jsonl"


def study(samples: Path, out: Path, *judge: str) -> dict[str, Any]:
    """prepare (every item) -> one annotator's answers -> import -> report; report.json."""
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", str(N), "--out", str(out),
                 *judge]) == 0
    ids = item_ids_by_doc(out)
    write_potato_state(out, "alice", {ids[i]: ("1", "yes") if human_error(i) else ("0", "no") for i in range(N)})
    assert main(["human-study", "import", str(out)]) == 0
    assert main(["human-study", "report", str(out)]) == 0
    return json.loads((out / "report" / "report.json").read_text())  # type: ignore[no-any-return]


def by_hand(labels: dict[int, bool]) -> tuple[float, float, float]:
    """Agreement, Cohen's kappa and error share of `labels` (doc -> error) against the humans."""
    docs = sorted(labels)
    agree = sum(labels[i] == human_error(i) for i in docs) / len(docs)
    p_judge = sum(labels[i] for i in docs) / len(docs)
    p_human = sum(human_error(i) for i in docs) / len(docs)
    expected = p_judge * p_human + (1 - p_judge) * (1 - p_human)
    return agree, (agree - expected) / (1 - expected), p_judge


def test_the_jury_and_each_model_against_the_humans(judged: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    report = study(judged, tmp_path / "study")
    rows = [json.loads(line) for line in judged.read_text().splitlines()]
    jury_labels = {row["doc_id"]: row["judgments"]["factuality"]["score"] >= 1 for row in rows}
    assert len(set(jury_labels.values())) == 2  # both labels occur: kappa is defined
    figures = {row["model"]: row for row in report["jury"]}
    assert list(figures) == ["jury", *JURY]
    # The jury's row is the headline (the judge row of the summary table).
    assert figures["jury"]["agreement"] == report["agreement"] and figures["jury"]["kappa"] == report["kappa"]
    ids = item_ids_by_doc(tmp_path / "study")
    for model in ("jury", *JURY):
        if model == "jury":
            labels = jury_labels
        else:
            labels = {i: s >= 1 for i in range(N) if (s := factuality(model, i)) is not None}
        agree, kappa, share = by_hand(labels)
        row = figures[model]
        assert row["n_items"] == len(labels) == (N - 1 if model == "gpt-4.1-nano" else N)
        assert row["agreement"]["value"] == pytest.approx(agree)
        assert row["kappa"]["value"] == pytest.approx(kappa)
        assert row["error_rate"]["value"] == pytest.approx(share)
        with_jury = [labels[i] == jury_labels[i] for i in sorted(labels)]
        assert row["agreement_with_jury"]["value"] == pytest.approx(sum(with_jury) / len(with_jury))
        # The SE is the items' bootstrap (in project order, the report's seed) of the agreement indicator.
        indicators = [labels[i] == human_error(i) for i in sorted(labels, key=lambda d: ids[d])]
        direct = proportion_estimate(indicators, seed=0)
        assert row["agreement"]["standard_error"] == pytest.approx(direct.standard_error)
        assert row["agreement"]["standard_error"] > 0 and row["kappa"]["standard_error"] > 0
    assert figures["gpt-4o"]["agreement"]["value"] != figures["gpt-4o-mini"]["agreement"]["value"]
    # Each model's score is kept per item in the manifest (hidden from annotators: not in items.jsonl).
    manifest = json.loads((tmp_path / "study" / "study.json").read_text())
    assert {item["source"]["doc_id"]: item["jury_scores"]["gpt-4.1-nano"] for item in manifest["items"]}[5] is None
    assert "gpt-4o" not in (tmp_path / "study" / "data" / "items.jsonl").read_text()
    markdown = (tmp_path / "study" / "report" / "report.md").read_text()
    assert "## Each jury model against the humans" in markdown
    assert "| factuality (jury) | 12 | " in markdown and "| factuality@gpt-4.1-nano | 11 | " in markdown
    html = (tmp_path / "study" / "report" / "report.html").read_text()
    assert 'id="jury-table"' in html and all(f"factuality@{m}" in html for m in JURY)
    printed = capsys.readouterr().out
    assert all(f"jury model {m}: agreement " in printed for m in JURY)


def test_one_model_of_the_jury_as_the_judge(judged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = study(judged, tmp_path / "one", "--judge", "factuality@gpt-4o")
    agree, kappa, _ = by_hand({i: factuality("gpt-4o", i) >= 1 for i in range(N)})  # type: ignore[operator]
    assert report["judge"] == "factuality@gpt-4o" and "jury" not in report
    assert report["agreement"]["value"] == pytest.approx(agree) and report["kappa"]["value"] == pytest.approx(kappa)
    # The PPI row reads the same model's labels back from the samples file.
    assert report["calibrated"]["judge_only"]["value"] == pytest.approx(
        sum(factuality("gpt-4o", i) >= 1 for i in range(N)) / N)  # type: ignore[operator]
    message = cli_error(capsys, ["human-study", "prepare", "--samples", str(judged), "--n", "2", "--out",
                                 str(tmp_path / "bad"), "--judge", "factuality@gpt-5"])
    assert "'gpt-5'" in message and "gpt-4o, gpt-4o-mini, gpt-4.1-nano" in message


def test_a_single_model_study_has_no_jury_figures(tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "samples.jsonl",
                            [judged_sample(i, "m", score=float(i % 2)) for i in range(N)])
    report = study(samples, tmp_path / "study")
    assert "jury" not in report
    manifest = json.loads((tmp_path / "study" / "study.json").read_text())
    assert all("jury_scores" not in item for item in manifest["items"])
    assert "jury" not in (tmp_path / "study" / "report" / "report.md").read_text().lower()
    assert 'id="jury-table"' not in (tmp_path / "study" / "report" / "report.html").read_text()
