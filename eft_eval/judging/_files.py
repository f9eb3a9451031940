"""`eft-eval judge` as a library call: JSONL in, samples.jsonl and results.json out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import iter_jsonl, write_json, write_jsonl
from eft_eval.judging._config import JudgeConfig
from eft_eval.judging._engine import (
    JudgeItem,
    count_uncached,
    judge_items_sync,
    judge_model_name,
)
from eft_eval.judging._ledger import new_ledger
from eft_eval.judging._preflight import preflight
from eft_eval.judging._records import read_records
from eft_eval.judging._spec import JudgeSpec, load_judges
from eft_eval.parsing import parse_number
from eft_eval.redact import url_without_userinfo
from eft_eval.runfolder import RunFolder
from eft_eval.stats import summarize_samples


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
    if limit is not None:  # a negative limit would slice from the end: -1 judged all rows but one
        limit = int(parse_number(limit, "--limit", "judge", integer=True, minimum=1))
    judges = load_judges(judge_names, include_paths)
    rows = [row for path in inputs for row in read_records(path, model_label, query_field)]
    rows = rows[:limit] if limit is not None else rows
    if not rows:
        raise EFTEvalError(f"no records to judge in {', '.join(map(str, inputs))}")
    output = Path(output_dir)
    if output.exists() and not output.is_dir():
        raise EFTEvalError(f"{output}: --output must be a folder, not a file")
    check_output_folder(output, rows)  # before a lock file is put in someone's folder
    if config.mode == "batch" and config.batch.state is None:  # the batch record lives with the output
        config = config.with_batch_state(RunFolder(output).batch_state)
    items = [JudgeItem(query=row["query"], response=row["response"]) for row in rows]
    if count_uncached(items, judges, config):  # a fully cached re-run needs no server at all
        preflight(config, judges)  # a refused key or an unreachable server: stop before asking anything

    # One `judge` per output folder at a time: two would pay for every judgment twice.
    with RunFolder(output).lock("eft-eval judge"):
        check_output_folder(output, rows)  # again: another command may have written it meanwhile
        ledger = new_ledger(config)
        for row, judgments in zip(rows, judge_items_sync(items, judges, config, ledger=ledger)):
            row["judgments"] = {**row["judgments"], **judgments}

        # The judgments first: what was paid for is on disk before anything can fail summarizing it.
        write_jsonl(RunFolder(output).samples, rows)
        results = summarize_samples(rows, judges)
        results["n_items"] = len(rows)
        results["inputs"] = [str(path) for path in inputs]
        results["config"] = describe_config(config, judges)
        results["cost"] = ledger.summary()
        write_json(RunFolder(output).results, results)
    _refuse_all_failed(rows, judges, output)
    return results


def cancel_output_batches(output_dir: str | Path, config: JudgeConfig) -> list[str]:
    """`judge --judge-mode batch --cancel`: cancel the batches recorded in `output_dir` (or in
    `config.batch.state`) that are still running; nothing is judged. The ids of those cancelled."""
    from eft_eval.judging._batch import cancel_batches

    if config.batch.state is None:
        config = config.with_batch_state(RunFolder(Path(output_dir)).batch_state)
    return cancel_batches(config)


def check_output_folder(output: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Refuse a folder whose files `judge` would replace with something else: a run folder (its
    run.json would go on describing samples that are no longer its own), or a judge folder holding
    other responses. The same responses, more or fewer of them (`--limit`), are a re-run."""
    folder = RunFolder(output)
    if folder.run.is_file():
        raise EFTEvalError(
            f"{output}: is the folder of an `eft-eval run` ({folder.run.name}); judging into it would replace its "
            "samples.jsonl and results.json: choose another --output (to add judges to that run, re-run "
            "`eft-eval run` with --judges)")
    samples, results = folder.samples, folder.results
    if not samples.exists():
        if results.exists():
            raise EFTEvalError(f"{output}: holds a {results.name} but no {samples.name}, so not a `judge` output; "
                               "choose another --output")
        return
    previous = [(str(row.get("query")), str(row.get("response"))) for _, row in iter_jsonl(samples)]
    current = [(str(row["query"]), str(row["response"])) for row in rows]
    shared = min(len(previous), len(current))
    differs = next((i for i in range(shared) if previous[i] != current[i]), None)
    if differs is not None:
        raise EFTEvalError(
            f"{samples}: holds the judgments of other responses (row {differs + 1} differs from the input's); "
            "choose another --output, or delete the folder to start over")


def _refuse_all_failed(rows: Sequence[dict[str, Any]], judges: Sequence[JudgeSpec], output: Path) -> None:
    """Every judgment failed (a server answering only errors): files are written, but it is an error."""
    judged = [row["judgments"][spec.name] for row in rows for spec in judges]
    if judged and all(j.get("status") == "failed" for j in judged):
        first = next((j.get("error") for j in judged if j.get("error")), "no error recorded")
        raise EFTEvalError(
            f"every judgment failed ({len(judged)} of {len(judged)}; first error: {first}); wrote "
            f"{RunFolder(output).samples} with them: re-run the same command to retry"
        )


def describe_config(config: JudgeConfig, judges: Sequence[JudgeSpec]) -> dict[str, Any]:
    """What produced the judgments, for results.json. Deliberately has no API key."""
    described: dict[str, Any] = {
        "backend": config.backend,
        "judge_models": {spec.name: judge_model_name(spec, config) for spec in judges},
        # Never `user:password@`: credentials in the URL stay out of run.json and results.json.
        "base_url": url_without_userinfo(config.resolved_base_url()) if config.backend == "openai" else None,
        "show_query": config.show_query,
        "max_parse_retries": config.max_parse_retries,
        "mode": config.mode,  # live or the Batch API, and answers per judge and response
        "judge_samples": config.samples,
    }
    if config.jury_models():  # a jury: its models, and how their scores combine when not each judge's own
        described["jury"] = {"models": config.jury_models(), "aggregation": config.jury_aggregation}
    return described
