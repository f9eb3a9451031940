"""The built-in task plugins, loaded by lm-eval itself: HH selection on a sample of the real HH file
(tests/data/hh-rlhf; the full file too when EFT_EVAL_HH_FILE names it), ELI5's 30-word filter on a
local fixture, the demo prompts, and data files with the wrong fields."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import HH_DATA, HH_FILE, single_turn_queries

from eft_eval.errors import EFTEvalError
from eft_eval.pipeline._tasks import load_task

FULL_HH_SHA256 = "ebfaaed21162a4de120ae85366075b34425e2a6303fac59b99555002f7016f03"


def docs(task: str, **metadata: Any) -> list[dict[str, Any]]:
    return list(load_task(task, [], metadata).task.test_docs())


def check_hh_selection(path: Path) -> None:
    """256 single-turn prompts, drawn at random, the same for the same seed."""
    eligible = single_turn_queries(path)
    assert len(eligible) > 256
    first = docs("hh_harmless", data_files=str(path), selection_seed=0)
    again = docs("hh_harmless", data_files=str(path), selection_seed=0)
    other = docs("hh_harmless", data_files=str(path), selection_seed=1)
    queries = [doc["query"] for doc in first]
    assert len(queries) == 256 and len(set(queries)) > 250
    assert set(queries) <= eligible  # only single-turn dialogues, first Human turn
    assert queries == [doc["query"] for doc in again]
    assert queries != [doc["query"] for doc in other]
    # Drawn at random, not the file's first 256 single-turn records.
    assert sorted(doc["source_index"] for doc in first) != [doc["source_index"] for doc in first]


def test_hh_selects_256_single_turn_prompts_the_same_for_the_same_seed() -> None:
    with gzip.open(HH_FILE, "rt", encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == 400  # 100 of them multi-turn: never selected
    assert len(single_turn_queries()) <= 300
    check_hh_selection(HH_FILE)


@pytest.mark.skipif(not os.environ.get("EFT_EVAL_HH_FILE"),
                    reason="set EFT_EVAL_HH_FILE to a full HH-RLHF test.jsonl.gz to check the loader on it")
def test_full_hh_file_when_given(tmp_path: Path) -> None:
    """The whole file loads and selects as the sample does; for harmless-base, the committed sample is
    exactly what tests/data/hh-rlhf/make_sample.py cuts from it."""
    full = Path(os.environ["EFT_EVAL_HH_FILE"])
    check_hh_selection(full)
    if hashlib.sha256(full.read_bytes()).hexdigest() == FULL_HH_SHA256:
        with gzip.open(full, "rt", encoding="utf-8") as handle:
            assert sum(1 for _ in handle) == 2312
        assert len(single_turn_queries(full)) > len(single_turn_queries())
        script = tmp_path / "make_sample.py"
        script.write_text((HH_DATA / "make_sample.py").read_text())  # writes beside itself: a scratch copy
        subprocess.run([sys.executable, str(script), str(full)], check=True, capture_output=True, timeout=300)
        assert (tmp_path / HH_FILE.name).read_bytes() == HH_FILE.read_bytes()


def test_hh_multi_turn_dialogues_never_selected(tmp_path: Path) -> None:
    records = [
        {"chosen": "\n\nHuman: one turn?\n\nAssistant: yes", "rejected": "x"},
        {"chosen": "\n\nHuman: first\n\nAssistant: a\n\nHuman: second\n\nAssistant: b", "rejected": "x"},
        {"chosen": "\n\nHuman: another single?\n\nAssistant: sure", "rejected": "x"},
    ]
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert sorted(doc["query"] for doc in docs("hh", data_files=str(path))) == ["another single?", "one turn?"]


def test_eli5_keeps_questions_of_at_most_30_words(tmp_path: Path) -> None:
    questions = {
        "thirty": " ".join(["word"] * 29 + ["thirty?"]),
        "thirty-one": " ".join(["word"] * 30 + ["thirtyone?"]),
        "short": "Why is the sky blue?",
        "long": "Why " + "really " * 40 + "?",
        "spaced": "  How   do   magnets   work?  ",
    }
    path = tmp_path / "eli5.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for key, text in questions.items():
            handle.write(json.dumps({"q_id": key, "title": text, "answers": {"text": ["..."]}}) + "\n")
    selected = {doc["query"] for doc in docs("eli5", data_files=str(path))}
    assert selected == {questions["thirty"], questions["short"], "How do magnets work?"}
    assert all(len(q.split()) <= 30 for q in selected)


def test_demo_prompts_ship_with_the_package_and_alternate_categories() -> None:
    rows = docs("demo")
    assert len(rows) == 12
    assert {row["category"] for row in rows[:3]} == {"everyday", "factual", "harmful"}
    assert all(row["query"].strip() for row in rows)


@pytest.mark.parametrize(("task", "field"), [("hh_harmless", "chosen"), ("eli5", "input")])
def test_a_data_file_with_the_wrong_fields_names_the_missing_field(tmp_path: Path, task: str, field: str) -> None:
    path = tmp_path / "wrong.jsonl"
    path.write_text(json.dumps({"prompt": "Why?", "answer": "Because."}) + "\n")
    with pytest.raises(EFTEvalError, match=rf"no field '{field}'|one of '{field}'") as error:
        docs(task, data_files=str(path))
    assert str(path) in str(error.value) and "prompt" in str(error.value)  # and what it found


def test_hub_sources_are_the_documented_ones() -> None:
    """Offline, loading without data files fails naming the hub source it tried."""
    with pytest.raises(EFTEvalError, match="Anthropic/hh-rlhf/harmless-base"):
        docs("hh_harmless")
    with pytest.raises(EFTEvalError, match="facebook/kilt_tasks"):
        docs("eli5")


def test_unknown_task_lists_the_available_ones() -> None:
    with pytest.raises(EFTEvalError, match=r"unknown task 'hh_harmles'.*demo, eli5, hh, hh_harmless, hh_helpful"):
        load_task("hh_harmles", [], {})
