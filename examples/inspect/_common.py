"""What the HH and ELI5 example tasks share: data (local sample or the paper's prompts), judges, config."""

from __future__ import annotations

from pathlib import Path

from inspect_ai import Task
from inspect_ai.dataset import Dataset, Sample, json_dataset
from inspect_ai.model import GenerateConfig
from inspect_ai.solver import generate

from eft_eval.inspect import judge_scorer, task_samples

DATA = Path(__file__).parent / "data"


def judged_task(name: str, sample_file: str, default_judges: str, *, data: str | None, paper: bool,
                judges: str | None, judge_model: str | None, show_query: bool, max_tokens: int) -> Task:
    dataset: Dataset
    if paper:  # the 256 prompts `eft-eval run NAME` draws (the hub, or `data` as the task's local file)
        dataset = task_samples(name, data_files=[data] if data else None)
    else:
        dataset = json_dataset(str(data or DATA / sample_file),
                               lambda record: Sample(input=record["query"], id=record.get("id")))
    chosen = default_judges if judges == "default" else (judges or "")
    names = [j.strip() for j in chosen.split(",") if j.strip() and j.strip() != "none"]
    return Task(
        dataset=dataset,
        solver=generate(),
        scorer=[judge_scorer(j, model=judge_model, show_query=show_query) for j in names] or None,
        config=GenerateConfig(max_tokens=max_tokens),
        name=name,
    )
