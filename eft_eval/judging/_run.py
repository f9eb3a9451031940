"""`eft-eval judge` as a library call: JSONL in, samples.jsonl and results.json out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import write_json, write_jsonl
from eft_eval.judging._config import JudgeConfig
from eft_eval.judging._engine import JudgeItem, judge_items_sync, judge_model_name
from eft_eval.judging._records import read_records
from eft_eval.judging._spec import JudgeSpec, load_judges
from eft_eval.judging._summary import summarize_judgments


def judge_files(
    inputs: Sequence[str | Path],
    judge_names: list[str] | None,
    output_dir: str | Path,
    config: JudgeConfig,
    include_paths: list[str] | None = None,
    model_label: str | None = None,
    query_field: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Judge every record of `inputs`; write `output_dir`/samples.jsonl and results.json.

    Judgments already in the input (e.g. a samples.jsonl judged before) are kept unless a judge of
    the same name is run again. Re-running is cheap: answers come from the cache.
    """
    judges = load_judges(judge_names, include_paths)
    rows = [row for path in inputs for row in read_records(path, model_label, query_field)]
    rows = rows[:limit] if limit is not None else rows
    if not rows:
        raise EFTEvalError(f"no records to judge in {', '.join(map(str, inputs))}")
    output = Path(output_dir)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EFTEvalError(f"cannot create the output folder {output}: {error.strerror or error}") from error

    items = [JudgeItem(query=row["query"], response=row["response"]) for row in rows]
    for row, judgments in zip(rows, judge_items_sync(items, judges, config)):
        row["judgments"] = {**row["judgments"], **judgments}

    results = summarize_samples(rows, judges)
    results["n_items"] = len(rows)
    results["inputs"] = [str(path) for path in inputs]
    results["config"] = describe_config(config, judges)
    write_jsonl(output / "samples.jsonl", rows)
    write_json(output / "results.json", results)
    return results


def summarize_samples(rows: Sequence[dict[str, Any]], judges: Sequence[JudgeSpec]) -> dict[str, Any]:
    """Per-judge summaries over all rows, and per model when the rows come from several models."""
    def per_judge(selected: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {
            spec.name: summarize_judgments([r["judgments"][spec.name] for r in selected if spec.name in r["judgments"]], spec)
            for spec in judges
        }

    models = sorted({str(row.get("model")) for row in rows})
    summary: dict[str, Any] = {"judges": per_judge(rows)}
    if len(models) > 1:
        summary["by_model"] = {model: per_judge([r for r in rows if str(r.get("model")) == model]) for model in models}
    return summary


def describe_config(config: JudgeConfig, judges: Sequence[JudgeSpec]) -> dict[str, Any]:
    """What produced the judgments, for results.json. Deliberately has no API key."""
    return {
        "backend": config.backend,
        "judge_models": {spec.name: judge_model_name(spec, config) for spec in judges},
        "base_url": config.resolved_base_url() if config.backend == "openai" else None,
        "show_query": config.show_query,
        "max_parse_retries": config.max_parse_retries,
    }
