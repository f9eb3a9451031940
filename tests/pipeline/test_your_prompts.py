"""Your own prompts: the built-in `prompts` task (a JSONL with a `query` per line, every other field
kept), a task YAML in your own folder that starts from eft-eval's task files, and the errors on the way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eft_eval.errors import EFTEvalError
from eft_eval.pipeline._tasks import load_task, our_task_entries

PROMPTS = [
    {"query": "Why is the sky blue?", "id": "sky", "category": "science", "difficulty": 2},
    {"query": "Write a haiku about tea.", "id": "tea", "tags": ["poetry", "short"]},
]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def docs(task: str, include_paths: list[str] | None = None, **metadata: Any) -> list[dict[str, Any]]:
    return list(load_task(task, include_paths or [], metadata).task.test_docs())


def test_prompts_keeps_every_field_in_file_order(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "my.jsonl", PROMPTS)
    loaded = load_task("prompts", [], {"data_files": [str(data)]})
    assert loaded.default_judges == ["helpfulness", "harm"]
    rows = list(loaded.task.test_docs())
    assert [row["query"] for row in rows] == [p["query"] for p in PROMPTS]
    assert [row["id"] for row in rows] == ["sky", "tea"]
    # A field only some records have is None in the others; nested values stay as they are.
    assert [row["category"] for row in rows] == ["science", None]
    assert [row["difficulty"] for row in rows] == [2, None]
    assert rows[1]["tags"] == ["poetry", "short"]
    # The prompt lm-eval builds is the query alone (each EFT component renders it in its own format).
    assert loaded.task.doc_to_text(rows[0]) == "Why is the sky blue?"


def test_a_record_without_a_query_is_one_line_naming_the_file_and_line(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "my.jsonl", [PROMPTS[0], {"prompt": "no query here", "id": 3}])
    with pytest.raises(EFTEvalError) as error:
        docs("prompts", data_files=[str(data)])
    message = str(error.value)
    assert message.startswith(f"{data}:2: ") and "query" in message and "prompt, id" in message
    assert "\n" not in message
    with pytest.raises(EFTEvalError, match="needs your prompts: --data-files"):
        docs("prompts")


def test_the_demo_task_takes_a_users_file_without_categories(tmp_path: Path) -> None:
    """`run demo --data-files my.jsonl` used to stop on a missing `category`."""
    data = write_jsonl(tmp_path / "my.jsonl", [{"query": "Hello?"}])
    assert [row["query"] for row in docs("demo", data_files=[str(data)])] == ["Hello?"]


def test_a_task_in_your_own_folder_includes_eft_evals_task_files_by_name(tmp_path: Path) -> None:
    """lm-eval looks for `include:` beside the including file only; eft-eval's task files are found too."""
    folder = tmp_path / "mine"
    folder.mkdir()
    data = write_jsonl(folder / "questions.jsonl", PROMPTS)
    (folder / "my_prompts.yaml").write_text(
        "task: my_prompts\ninclude: prompts.yaml\nmetadata:\n  about: my questions\n  judges: [brevity]\n",
        encoding="utf-8")
    (folder / "my_judged.yaml").write_text(
        "task: my_judged\ninclude: _judged_task.yaml\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "generation_kwargs:\n  until: ['\\n\\nQ:']\n  max_gen_toks: 7\n", encoding="utf-8")
    loaded = load_task("my_prompts", [str(folder)], {"data_files": [str(data)]})
    assert loaded.source == str(folder / "my_prompts.yaml")
    assert loaded.default_judges == ["brevity"] and loaded.about == "my questions"
    assert [row["id"] for row in loaded.task.test_docs()] == ["sky", "tea"]
    # The shared base alone: its prompt, stop and metric, with the user's own generation settings.
    judged = load_task("my_judged", [str(folder)], {})
    assert [row["query"] for row in judged.task.test_docs()] == [p["query"] for p in PROMPTS]
    assert judged.task.get_config("output_type") == "generate_until"
    assert judged.task.get_config("generation_kwargs")["max_gen_toks"] == 7
    assert {"my_prompts", "my_judged", "prompts"} <= set(our_task_entries([str(folder)]))


def test_an_include_found_nowhere_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("task: broken\ninclude: _no_such_base.yaml\n", encoding="utf-8")
    with pytest.raises(EFTEvalError, match=r"broken.yaml: include '_no_such_base.yaml' is neither beside it"):
        load_task("broken", [str(tmp_path)], {})


def test_an_unknown_task_names_the_files_of_the_folder_that_are_no_task_judge_or_study(tmp_path: Path) -> None:
    """lm-eval passes over a task file it cannot read; the error for the name it would have defined says why."""
    (tmp_path / "mine.yaml").write_text("task: mine\ninclude: prompts.yaml\nmetadata: [unclosed\n", encoding="utf-8")
    (tmp_path / "brevity.yaml").write_text("name: brevity\nprompt: 'Rate {response}'\nscore: {kind: integer}\n")
    with pytest.raises(EFTEvalError) as error:
        load_task("mine", [str(tmp_path)], {})
    message = str(error.value)
    assert message.startswith("unknown task 'mine'") and f"{tmp_path / 'mine.yaml'}: not valid YAML" in message
    assert "brevity.yaml" not in message and "\n" not in message
