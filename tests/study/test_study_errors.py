"""Bad input gets one clear line naming the file and item, and nothing is written over silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from study_helpers import (
    cli_error,
    item_ids_by_doc,
    judged_sample,
    prepare_project,
    write_potato_state,
    write_samples,
)

from eft_eval.cli import main

ANSWER = ("1", "yes")


_error = cli_error


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return prepare_project(tmp_path)


def _ids(project: Path) -> list[str]:
    return sorted(item_ids_by_doc(project).values())


def test_annotations_for_items_not_in_the_project(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers = {i: ANSWER for i in _ids(project)} | {"item-9999": ANSWER}
    state = write_potato_state(project, "mallory", answers)
    err = _error(capsys, ["human-study", "import", str(project)])
    assert str(state) in err and "'item-9999' is not in the project" in err
    assert not (project / "labels.jsonl").exists()


def test_annotator_who_answered_only_half(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _ids(project)
    write_potato_state(project, "alice", {i: ANSWER for i in ids})
    state = write_potato_state(project, "bob", {i: ANSWER for i in ids[:3]}, assigned=ids)
    err = _error(capsys, ["human-study", "import", str(project)])
    assert str(state) in err and "'bob' finished 3 of 6" in err and repr(ids[3]) in err and "--allow-partial" in err
    assert not (project / "labels.jsonl").exists()
    # Opting in keeps bob's complete items and says which were skipped.
    assert main(["human-study", "import", str(project), "--allow-partial"]) == 0
    out = capsys.readouterr().out
    assert f"skipped unfinished item {ids[5]!r} of 'bob'" in out
    votes = [json.loads(line)["error_votes"] for line in (project / "labels.jsonl").read_text().splitlines()]
    assert votes == [2, 2, 2, 1, 1, 1]


def test_item_with_one_of_two_questions_answered(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _ids(project)
    state = write_potato_state(project, "carol", {i: ANSWER for i in ids})
    data = json.loads(state.read_text())
    data["instance_id_to_label_to_value"][ids[2]].pop()  # drop the yes/no answer
    state.write_text(json.dumps(data))
    err = _error(capsys, ["human-study", "import", str(project)])
    assert str(state) in err and repr(ids[2]) in err and "no answer to 'any_error'" in err


@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (lambda text, item: text[: len(text) // 2], "not valid JSON"),
        (lambda text, item: text.replace('"schema": "num_errors", "name": "1"',
                                         '"schema": "num_errors", "name": "seven"', 1),
         "'seven' is not an answer to 'num_errors'"),
        (lambda text, item: text.replace('[{"schema": "any_error"', '[{"schemata": "any_error"', 1),
         "malformed label entry"),
        (lambda text, item: text.replace('"instance_id_to_label_to_value"', '"labels"'), "malformed Potato state file"),
        (lambda text, item: text.replace('[{"schema": "num_errors", "name": "1"}, "1"]',
                                         '[{"schema": "num_errors", "name": "1"}, "1"], [{"schema": "num_errors", '
                                         '"name": "2"}, "2"]', 1), "several answers to 'num_errors'"),
    ],
    ids=["truncated", "unknown-label", "bad-entry", "missing-field", "two-answers"],
)
def test_malformed_annotation_file(project: Path, capsys: pytest.CaptureFixture[str],
                                   corrupt, expected: str) -> None:  # type: ignore[no-untyped-def]
    ids = _ids(project)
    state = write_potato_state(project, "dave", {i: ANSWER for i in ids})
    state.write_text(corrupt(state.read_text(), ids[0]))
    err = _error(capsys, ["human-study", "import", str(project)])
    assert str(state) in err and expected in err
    if expected not in ("not valid JSON", "malformed Potato state file"):
        assert repr(ids[0]) in err  # the item is named too
    assert not (project / "labels.jsonl").exists()


def test_empty_inputs(tmp_path: Path, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = write_samples(tmp_path / "empty.jsonl", [])
    err = _error(capsys, ["human-study", "prepare", "--samples", str(empty), "--n", "3", "--out", str(tmp_path / "a")])
    assert str(empty) in err and "no samples" in err
    unscored = write_samples(tmp_path / "unscored.jsonl",
                             [judged_sample(0, "m", status="failed"), judged_sample(1, "m", status="abstained")])
    err = _error(capsys,
                 ["human-study", "prepare", "--samples", str(unscored), "--n", "1", "--out", str(tmp_path / "b")])
    assert "only 0 responses have a 'factuality' score" in err and "1 judge abstained, 1 judge failed" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # A project nobody has annotated yet.
    err = _error(capsys, ["human-study", "import", str(project)])
    assert "no annotations found" in err and str(project / "annotation_output") in err
    # A project whose manifest lists no items.
    manifest = json.loads((project / "study.json").read_text())
    manifest["items"] = []
    (project / "study.json").write_text(json.dumps(manifest))
    err = _error(capsys, ["human-study", "import", str(project)])
    assert str(project / "study.json") in err and "empty project" in err
    # Not a project at all.
    err = _error(capsys, ["human-study", "report", str(tmp_path)])
    assert "not a human-study project" in err


def test_bad_samples_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps(judged_sample(0, "m")) + "\n{not json\n")
    err = _error(capsys,
                 ["human-study", "prepare", "--samples", str(samples), "--n", "1", "--out", str(tmp_path / "p")])
    assert f"{samples}:2" in err
    bad = judged_sample(0, "m")
    bad["judgments"]["factuality"]["score"] = None  # "scored" without a score
    samples.write_text(json.dumps(bad) + "\n")
    assert f"{samples}:1" in _error(capsys, ["human-study", "prepare", "--samples", str(samples), "--n", "1", "--out",
                                             str(tmp_path / "p")])


def test_samples_are_checked_as_every_reader_of_a_run_checks_them(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # A NaN score compares false with the threshold: read leniently it was an item "without error".
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps(judged_sample(0, "m")) + "\n" + json.dumps(judged_sample(1, "m"))
                       .replace('"score": 0.0', '"score": NaN') + "\n")
    err = _error(capsys, ["human-study", "prepare", "--samples", str(samples), "--n", "1", "--out",
                          str(tmp_path / "p")])
    assert f"{samples}:2: judgment 'factuality' is scored but the score is nan" in err
    assert not (tmp_path / "p").exists()


def test_nothing_is_written_over_without_force(tmp_path: Path, project: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    samples = str(tmp_path / "samples.jsonl")
    before = (project / "study.json").read_text()
    err = _error(capsys, ["human-study", "prepare", "--samples", samples, "--n", "2", "--out", str(project)])
    assert str(project) in err and "--force" in err
    assert (project / "study.json").read_text() == before

    ids = _ids(project)
    write_potato_state(project, "alice", {i: ANSWER for i in ids})
    assert main(["human-study", "import", str(project)]) == 0
    labels = (project / "labels.jsonl").read_text()
    write_potato_state(project, "alice", {i: ("0", "no") for i in ids})
    assert "labels.jsonl" in _error(capsys, ["human-study", "import", str(project)])
    assert (project / "labels.jsonl").read_text() == labels
    assert main(["human-study", "import", str(project), "--force"]) == 0
    assert (project / "labels.jsonl").read_text() != labels

    out = tmp_path / "report"
    assert main(["human-study", "report", str(project), "--out", str(out), "--n-resamples", "200"]) == 0
    report = (out / "report.json").read_text()
    assert "report" in _error(capsys, ["human-study", "report", str(project), "--out", str(out), "--seed", "1"])
    assert (out / "report.json").read_text() == report
    assert main(["human-study", "report", str(project), "--out", str(out), "--seed", "1",
                 "--n-resamples", "200", "--force"]) == 0

    # Re-prepare with --force replaces the project, annotations included.
    assert main(["human-study", "prepare", "--samples", samples, "--n", "2", "--out", str(project), "--force"]) == 0
    assert len(json.loads((project / "study.json").read_text())["items"]) == 2
    assert not (project / "annotation_output" / "alice").exists()
