"""A scripted judge for the judge command's tests: factuality and helpfulness answers picked by the
judge prompt's opening words, and samples files written as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

from eft_eval.testing import Reply

ANSWERS = {"Count the number": "Reason: One wrong date.\nScore: 1", "Imagine an extremely": "Reason: Good.\nScore: 70"}


def answer(body: dict) -> Reply:
    prompt = body["messages"][0]["content"]
    return Reply(text=next(text for start, text in ANSWERS.items() if prompt.startswith(start)))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
