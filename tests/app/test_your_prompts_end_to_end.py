"""The documented "your model, your prompts, your judge" path (docs/your-prompts.md), end to end, from one
folder of your own holding prompts, two judges, a task and a study: `run prompts`, `run` your task,
`sweep` your study, then `report` and `analyze` without being told the folder again. No warnings."""

from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import eft_spec, judge_answer

from eft_eval.cli import main
from eft_eval.testing import LoopbackServer

PROMPTS = [
    {"query": "Why is the sky blue?", "id": "sky", "category": "science"},
    {"query": "Write a haiku about tea.", "id": "tea", "category": "poetry"},
    {"query": "How do I boil an egg?", "id": "egg", "category": "cooking"},
]
JUDGE = """name: {name}
description: {description}
prompt: |
  Rate the response below from 0 to 10.
  RESPONSE: {{response}}
  Answer with "Reason: ..." and then "Score: <a number>".
score: {{kind: integer, min: 0, max: 10}}
higher_is_better: true
judge_model: loopback
"""
TASK = """task: my_prompts
include: prompts.yaml
metadata:
  about: my own prompts, judged by my judges
  judges: [brevity, clarity]
"""


def my_folder(root: Path, family: dict[str, Path]) -> Path:
    """A user's folder: prompts, two judges, a task and a study, side by side."""
    folder = root / "mine"
    folder.mkdir()
    (folder / "my.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROMPTS), encoding="utf-8")
    (folder / "brevity.yaml").write_text(JUDGE.format(name="brevity", description="How short the response is."))
    (folder / "clarity.yaml").write_text(JUDGE.format(name="clarity", description="How clear the response is."))
    (folder / "my_prompts.yaml").write_text(TASK)
    (folder / "my_study.yaml").write_text(
        "study: my_study\nabout: beta on my prompts\n"
        f"run: {{task: my_prompts, limit: 2, max_new_tokens: 4, batch_size: 2, data_files: [{folder / 'my.jsonl'}]}}\n"
        "grid:\n  beta: [0.5, 1]\n"
        f"model: {{base: {family['large_base']}, ft: {family['small_ft']}, ref: {family['small_base']}, "
        "beta: '{beta}'}\n"
        "analysis: {kind: frontier, x: brevity, y: clarity}\n")
    return folder


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return out, err


def test_your_prompts_your_judge_your_study_from_one_folder(
    tiny_family: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    folder = my_folder(tmp_path, tiny_family)
    out = tmp_path / "out"
    common = ["--model", eft_spec(tiny_family), "--data-files", str(folder / "my.jsonl"), "--max-new-tokens", "4",
              "--include-path", str(folder), "--no-progress"]
    errors: list[str] = []
    with LoopbackServer(judge_answer) as server:
        url = ["--base-url", server.base_url]
        _, err = cli(["run", "prompts", "--judges", "brevity,clarity", "--output", str(out / "prompts"),
                      *common, *url], capsys)
        errors.append(err)
        _, err = cli(["run", "my_prompts", "--output", str(out / "mine"), *common, *url], capsys)
        errors.append(err)
        study = ["sweep", "my_study", "--include-path", str(folder), "--output", str(out / "study"), *url]
        listed, err = cli([*study, "--list"], capsys)
        errors.append(err)
        _, err = cli([*study, "--no-progress"], capsys)
        errors.append(err)

    # Every field of the prompts reached the samples; the task's default judges are the user's.
    for name, judges in (("prompts", ["brevity", "clarity"]), ("mine", ["brevity", "clarity"])):
        rows = [json.loads(line) for line in (out / name / "samples.jsonl").read_text().splitlines()]
        assert [(row["doc"]["id"], row["doc"]["category"]) for row in rows] == [(p["id"], p["category"])
                                                                              for p in PROMPTS]
        assert all(list(row["judgments"]) == judges for row in rows)

    # run.json's command is the `eft-eval run` line that repeats the run, also for a sweep's points.
    record = json.loads((out / "prompts" / "run.json").read_text())
    assert record["command"][:3] == ["eft-eval", "run", "prompts"]
    assert record["include_paths"] == [str(folder.resolve())]
    points = sorted((out / "study" / "runs").iterdir())
    assert len(points) == 2
    commands = [json.loads((point / "run.json").read_text())["command"] for point in points]
    assert sorted(commands) == sorted(shlex.split(line) for line in listed.strip().splitlines())

    # report and analyze, without --include-path: the folder each run recorded is read again.
    before = (out / "prompts" / "results.json").read_text()
    table, err = cli(["report", str(out / "prompts"), str(out / "mine"), str(out / "study"), "--html",
                      str(out / "report.html")], capsys)
    errors.append(err)
    assert re.search(r"prompts\s+prompts\s+brevity", table) and re.search(r"mine\s+my_prompts\s+clarity", table)
    assert (out / "prompts" / "results.json").read_text() == before  # not rewritten unless asked
    html = (out / "report.html").read_text()
    assert "How short the response is." in html and "How clear the response is." in html
    assert "judge definition not found" not in html
    compared, err = cli(["analyze", "compare", str(out / "prompts"), str(out / "mine"), "--output",
                         str(out / "compare")], capsys)
    errors.append(err)
    assert "brevity (higher is better)" in compared and "clarity (higher is better)" in compared
    frontier = json.loads((out / "study" / "analysis" / "frontier.json").read_text())
    assert frontier  # the study's own analysis ran over the user's judges

    warned: list[Any] = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert warned == []
    for err in errors:
        assert "warning" not in err.lower() and "unavailable" not in err, err


def test_run_json_command_repeats_a_run_started_from_python(tiny_family: dict[str, Path], tmp_path: Path) -> None:
    """The demo and sweeps start runs from Python: run.json still says which `eft-eval run` repeats it
    (not the command line of whatever process started it), and the CLI reads it back as the same run."""
    from eft_eval.cli import build_parser
    from eft_eval.judging import JudgeConfig
    from eft_eval.pipeline._run import RunConfig, run_task

    data = tmp_path / "my.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS[:2]), encoding="utf-8")
    with LoopbackServer(judge_answer) as server:
        judge = JudgeConfig(base_url=server.base_url, concurrency=3, api_key="sk-secret", progress=False)
        result = run_task(RunConfig(task="prompts", model=eft_spec(tiny_family), output=tmp_path / "run", limit=2,
                                    max_new_tokens=4, judges=["harm"], data_files=[str(data)], judge=judge,
                                    progress=False))
    command = json.loads((result.folder.root / "run.json").read_text())["command"]
    assert command[:3] == ["eft-eval", "run", "prompts"] and "sk-secret" not in " ".join(command)
    args = build_parser().parse_args(command[1:])
    assert (args.task, args.model, args.output, args.limit, args.max_new_tokens, args.judges, args.data_files,
            args.base_url, args.concurrency) == ("prompts", eft_spec(tiny_family), str(tmp_path / "run"), 2, 4,
                                                 "harm", [str(data)], server.base_url, 3)
