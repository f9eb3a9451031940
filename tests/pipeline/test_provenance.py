"""run.json records each component's revision and the task's own data files; a resume checks them.

A local model folder's revision is a digest of its files (the same content anywhere, a new one
when a file changes), a hub model's is its cached snapshot's commit. A run whose model or task data
changed since its generations were stored stops with one line naming what changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from pipeline_helpers import judge_answer, own_task

from eft_eval.cli import main
from eft_eval.models import ComponentSpec, component_revision
from eft_eval.testing import LoopbackServer, build_chain_model


def run(model: Path, output: Path, tasks: Path) -> tuple[int, str]:
    stderr = io.StringIO()
    with LoopbackServer(judge_answer) as server, contextlib.redirect_stderr(stderr), \
            contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", "own_prompts", "--include-path", str(tasks), "--model", str(model),
                     "--max-new-tokens", "4", "--judges", "helpfulness", "--base-url", server.base_url,
                     "--output", str(output), "--no-progress"])
    return code, stderr.getvalue()


@pytest.fixture
def finished(tmp_path: Path) -> dict[str, Path]:
    model = build_chain_model(tmp_path / "chain", "Sure, glad to help.")
    tasks = own_task(tmp_path / "tasks")
    output = tmp_path / "run"
    code, stderr = run(model, output, tasks)
    assert code == 0, stderr[-2000:]
    return {"model": model, "tasks": tasks, "output": output}


def test_run_json_records_the_model_revision_and_the_tasks_data_files(finished: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    record = json.loads((finished["output"] / "run.json").read_text())
    revision = record["revisions"]["base"]["revision"]
    assert revision.startswith("sha256:") and len(revision) == len("sha256:") + 64
    assert record["revisions"]["base"]["model"] == str(finished["model"])
    data = finished["tasks"] / "prompts.jsonl"
    assert record["task_data_files"] == [{"path": str(data.resolve()),
                                          "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}]
    html = (finished["output"] / "report.html").read_text()  # the report's configuration shows them
    assert f"base: {revision}" in html and f"prompts.jsonl: sha256:{record['task_data_files'][0]['sha256']}" in html
    # The digest is of the content: a copy elsewhere has it, a changed file does not.
    copy = shutil.copytree(finished["model"], tmp_path / "copy")
    assert component_revision(ComponentSpec(str(copy))) == revision
    (copy / "README.md").write_text("notes are not the model")
    assert component_revision(ComponentSpec(str(copy))) == revision
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("}", ', "note": 1}', 1))
    assert component_revision(ComponentSpec(str(copy))) != revision


def test_a_resume_refuses_a_model_that_changed(finished: dict[str, Path]) -> None:
    before = json.loads((finished["output"] / "run.json").read_text())["revisions"]["base"]["revision"]
    build_chain_model(finished["model"], "Other words entirely.")  # retrained in place
    after = component_revision(ComponentSpec(str(finished["model"])))
    code, stderr = run(finished["model"], finished["output"], finished["tasks"])
    assert code == 2
    [line] = [line for line in stderr.splitlines() if line.startswith("eft-eval: error:")]
    assert f"the base model ({finished['model']}) is at revision {after} now" in line
    assert f"generated at {before}" in line and "choose another --output" in line


def test_a_resume_refuses_task_data_that_changed(finished: dict[str, Path]) -> None:
    data = finished["tasks"] / "prompts.jsonl"
    data.write_text(data.read_text() + json.dumps({"query": "One more?"}) + "\n")
    code, stderr = run(finished["model"], finished["output"], finished["tasks"])
    assert code == 2
    assert f"the task's data file {data.resolve()} has sha256 {hashlib.sha256(data.read_bytes()).hexdigest()}" \
        in stderr


def test_an_unchanged_resume_and_an_old_run_folder_go_on(finished: dict[str, Path]) -> None:
    assert run(finished["model"], finished["output"], finished["tasks"])[0] == 0
    record = json.loads((finished["output"] / "run.json").read_text())
    assert record["resumed"] == 1
    # A run folder from before revisions were recorded: nothing to compare, the run resumes.
    del record["revisions"], record["task_data_files"]
    (finished["output"] / "run.json").write_text(json.dumps(record))
    assert run(finished["model"], finished["output"], finished["tasks"])[0] == 0


def test_a_gguf_files_revision_is_the_files_sha256(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.gguf"
    checkpoint.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    expected = "sha256:" + hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert component_revision(ComponentSpec(str(tmp_path), gguf_file="model.gguf")) == expected


def test_a_hub_models_revision_is_its_cached_snapshots_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert component_revision(ComponentSpec("someone/tiny")) == commit
    assert component_revision(ComponentSpec("someone/not-downloaded")) is None  # offline: unknown, not an error
