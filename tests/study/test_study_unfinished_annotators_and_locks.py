"""Human study: unfinished annotators judged by their assigned count (a real Potato),
the report's disagreement counts, project folders locked, and bad files as one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from study_helpers import (
    PotatoAnnotator,
    cli_error,
    item_ids_by_doc,
    judged_sample,
    prepare_project,
    write_potato_state,
    write_samples,
)

from eft_eval.cli import main
from eft_eval.locking import lock_folder
from eft_eval.study._potato import PotatoServer

ANSWER = {"num_errors": "1", "any_error": "yes"}


_error = cli_error


@pytest.fixture
def crowd_project(tmp_path: Path) -> Path:
    """Six items, one annotator per item, six items per annotator (Potato's max_assignments)."""
    return prepare_project(tmp_path)


@pytest.fixture
def potato(crowd_project: Path, tmp_path: Path) -> Iterator[str]:
    with PotatoServer(crowd_project, log_file=tmp_path / "potato.log") as server:
        yield server.url


def test_annotator_who_stopped_after_3_of_6_is_unfinished(
    crowd_project: Path, potato: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Potato hands out items a few at a time: an annotator who stops after 3 holds only the items
    they did, so every item present in their state file is answered. The assigned count says 6."""
    annotator = PotatoAnnotator(potato, "dora")
    annotator.register()
    done = annotator.annotate_all(lambda item: ANSWER, limit=3)
    assert len(done) == 3
    state = json.loads((crowd_project / "annotation_output" / "dora" / "user_state.json").read_text())
    assert state["max_assignments"] == 6  # what Potato records, and what the check reads

    err = _error(capsys, ["human-study", "import", str(crowd_project)])
    assert "'dora' finished 3 of 6 assigned items" in err and "--allow-partial" in err
    assert not (crowd_project / "labels.jsonl").exists()

    assert main(["human-study", "import", str(crowd_project), "--allow-partial"]) == 0
    assert "'dora' stopped after 3 of 6 assigned items" in capsys.readouterr().out


def test_a_quota_no_one_can_fill_is_not_unfinished(crowd_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With one annotator per item, a second annotator finds nothing left: they are not unfinished."""
    ids = sorted(item_ids_by_doc(crowd_project).values())
    for name, mine in (("ann", ids[:4]), ("ben", ids[4:])):
        path = write_potato_state(crowd_project, name, {i: ("1", "yes") for i in mine})
        state = json.loads(path.read_text())
        path.write_text(json.dumps({**state, "max_assignments": 6}))
    assert main(["human-study", "import", str(crowd_project)]) == 0
    assert "stopped after" not in capsys.readouterr().out


def test_report_counts_disagreements_with_and_without_gold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Judge labels (score >= 1): F T F T; humans say T F F F: disagreements on d0, d1, d3.
    samples = write_samples(tmp_path / "s.jsonl", [judged_sample(d, "m", score=float(d % 2)) for d in range(4)])
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "4", "--out", str(project)]) == 0
    ids = item_ids_by_doc(project)
    human = {0: ("1", "yes"), 1: ("0", "no"), 2: ("0", "no"), 3: ("0", "no")}
    write_potato_state(project, "alice", {ids[d]: a for d, a in human.items()})
    assert main(["human-study", "import", str(project)]) == 0
    adjudication = tmp_path / "adjudication"
    assert main(["human-study", "adjudicate", str(project), "--out", str(adjudication)]) == 0
    # The expert answers d0 only and stops (imported with --allow-partial): d1 and d3 get no gold.
    write_potato_state(adjudication, "expert", {ids[0]: ("0", "no")})
    assert main(["human-study", "import", str(adjudication)]) == 0
    out = tmp_path / "report"
    assert main(["human-study", "report", str(project), "--adjudication", str(adjudication), "--out", str(out)]) == 0
    gold = json.loads((out / "report.json").read_text())["gold"]
    assert (gold["n_disagreements"], gold["n_adjudicated"], gold["n_without_gold"]) == (3, 1, 2)
    assert sorted(gold["without_gold_item_ids"]) == sorted([ids[1], ids[3]])
    markdown = (out / "report.md").read_text()
    assert "| Judge-human disagreements | 3 |" in markdown
    assert "| Disagreements without a gold label (excluded) | 2 |" in markdown
    assert "## Disagreements no expert answered" in markdown
    assert ("disagreements: 3; with a gold label: 1; without: 2 (0 tied among the experts, 2 not "
            "answered)" in capsys.readouterr().out)


def test_a_state_path_that_is_a_folder_is_refused(crowd_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = sorted(item_ids_by_doc(crowd_project).values())
    write_potato_state(crowd_project, "alice", {i: ("1", "yes") for i in ids})
    (crowd_project / "annotation_output" / "bob" / "user_state.json").mkdir(parents=True)
    err = _error(capsys, ["human-study", "import", str(crowd_project)])
    assert "bob/user_state.json" in err and "folder" in err
    assert not (crowd_project / "labels.jsonl").exists()


def test_non_utf8_inputs_are_one_line_errors(tmp_path: Path, crowd_project: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    samples = tmp_path / "latin1.jsonl"
    samples.write_bytes(json.dumps(judged_sample(0, "m")).encode() + b"\n" + b'{"query": "caf\xe9"}\n')
    err = _error(capsys,
                 ["human-study", "prepare", "--samples", str(samples), "--n", "1", "--out", str(tmp_path / "p")])
    assert f"{samples}:2: not UTF-8" in err and not (tmp_path / "p").exists()

    ids = sorted(item_ids_by_doc(crowd_project).values())
    write_potato_state(crowd_project, "alice", {i: ("1", "yes") for i in ids})
    assert main(["human-study", "import", str(crowd_project)]) == 0
    labels = crowd_project / "labels.jsonl"
    labels.write_bytes(labels.read_bytes() + b'{"item_id": "\xff"}\n')
    err = _error(capsys, ["human-study", "report", str(crowd_project), "--out", str(tmp_path / "r")])
    assert f"{labels}:7: not UTF-8" in err and not (tmp_path / "r" / "report.json").exists()


def test_a_project_folder_in_use_is_refused(crowd_project: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    samples = write_samples(tmp_path / "again.jsonl", [judged_sample(d, "m") for d in range(2)])
    with lock_folder(crowd_project, "human-study serve"):
        err = _error(capsys, ["human-study", "prepare", "--samples", str(samples), "--n", "2", "--out",
                              str(crowd_project), "--force"])
        assert "in use by pid" in err
        assert (crowd_project / "study.json").exists()  # --force did not clear a folder in use
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "2", "--out",
                 str(crowd_project), "--force"]) == 0
