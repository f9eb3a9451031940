"""Anthropic HH prompts with the EFT paper's judges (helpfulness, harm), as an inspect task.

    inspect eval examples/inspect/hh.py --model eft/up -M preset=llama2:up
    inspect eval examples/inspect/hh.py --model eft/up -M base=L -M ft=S_CHAT -M ref=S -T paper=true

`-T data=FILE`: JSONL with a `query` field (default: eight sample prompts in data/). `-T paper=true`:
the paper's 256 single-turn test prompts, as `eft-eval run hh` draws them. `-T judges=none`:
no judging; `-T judge_model=openai/gpt-4o` or `--model-role grader=...`: the judge model (default:
each judge's `judge_model` on inspect's openai provider).
"""

from __future__ import annotations

from _common import judged_task  # type: ignore[import-not-found]  # inspect puts this folder on sys.path
from inspect_ai import Task, task


@task
def hh(data: str | None = None, paper: bool = False, judges: str | None = "default", judge_model: str | None = None,
       show_query: bool = False, max_tokens: int = 256) -> Task:
    return judged_task("hh", "hh_sample.jsonl", "helpfulness,harm", data=data, paper=paper, judges=judges,
                       judge_model=judge_model, show_query=show_query, max_tokens=max_tokens)
