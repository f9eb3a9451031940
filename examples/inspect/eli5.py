"""ELI5 questions with the EFT paper's judges (factuality, helpfulness), as an inspect task.

    inspect eval examples/inspect/eli5.py --model eft/up -M preset=llama2:up
    inspect eval examples/inspect/eli5.py --model eft/up -M spec=up.yaml -T paper=true

Options as in hh.py; `-T paper=true` reads the paper's 256 test questions of at most 30 words, as
`eft-eval run eli5` draws them.
"""

from __future__ import annotations

from _common import judged_task  # type: ignore[import-not-found]  # inspect puts this folder on sys.path
from inspect_ai import Task, task


@task
def eli5(data: str | None = None, paper: bool = False, judges: str | None = "default", judge_model: str | None = None,
         show_query: bool = False, max_tokens: int = 256) -> Task:
    return judged_task("eli5", "eli5_sample.jsonl", "factuality,helpfulness", data=data, paper=paper, judges=judges,
                       judge_model=judge_model, show_query=show_query, max_tokens=max_tokens)
