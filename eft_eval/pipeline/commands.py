"""The `eft-eval run` arguments and the run they start. Registration imports nothing heavy.

`eft_eval.app.commands` registers `run`: after the run it writes the HTML report, which this
package, below the report, cannot import.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eft_eval.judging.commands import (
    add_judge_arguments,
    config_from_args,
    quiet_http_logs,
)

if TYPE_CHECKING:
    from eft_eval.pipeline._run import RunResult


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The arguments of `eft-eval run` (`run_from_args` reads them); defaults from `RunConfig`."""
    from eft_eval.pipeline._prepare import RunConfig
    from eft_eval.pipeline._settings import RUN_SETTINGS
    from eft_eval.settings import add_arguments

    run.add_argument("task", metavar="TASK", help="a task name (`eft-eval list`), e.g. hh, hh_harmless, eli5, "
                     "demo, prompts (your own JSONL: --data-files)")
    model = run.add_mutually_exclusive_group(required=True)
    model.add_argument("--model",
                       help="a model or EFT spec: PATH_OR_HUB_ID, 'base=...,ft=...,ref=...[,beta=..]', a spec YAML; "
                       "smollm2-offline names the offline SmolLM2-135M-Instruct (GGUF)")
    model.add_argument("--preset", help="FAMILY:CONFIG, e.g. llama2:up, smollm2:down (`eft-eval list presets`)")
    run.add_argument("--output", metavar="DIR", help="run folder (default runs/TASK/MODEL_LABEL-DIGEST-seedSEED; "
                                                     "DIGEST covers the model, data and generation settings)")
    add_arguments(run, RUN_SETTINGS, RunConfig(task=""))
    run.add_argument("--no-html", action="store_true", help="do not write DIR/report.html")
    add_judge_arguments(run, include_help="extra folder of task YAMLs (lm-eval format) or judge YAMLs (repeatable)")


def quiet_logs(args: argparse.Namespace) -> None:
    """lm-eval logs every step at INFO and warns about settings we pass on purpose; -v shows them."""
    quiet_http_logs(args)
    if not getattr(args, "verbose", False):
        logging.getLogger("lm_eval").setLevel(logging.ERROR)


def run_from_args(args: argparse.Namespace) -> RunResult | None:
    """Run what `args` asks and print its results table; None when it only cancelled batches."""
    from eft_eval.pipeline._run import RunConfig, cancel_run_batches, run_task
    from eft_eval.pipeline._settings import RUN_SETTINGS
    from eft_eval.settings import build

    quiet_logs(args)
    config = build(RunConfig, RUN_SETTINGS, vars(args), task=args.task, model=args.model, preset=args.preset,
                   output=args.output, judge=config_from_args(args), include_paths=list(args.include_path),
                   judge_cache_in_run=not (args.cache_dir or args.no_cache), progress=not args.no_progress)
    if args.cancel:  # --judge-mode batch --cancel: nothing is generated or judged
        folder, cancelled = cancel_run_batches(config)
        print(f"cancelled {len(cancelled)} batch(es) recorded in {folder.root}")
        return None
    result = run_task(config)
    print_results(str(result.folder.root), result.results)
    return result


def print_results(folder: str, results: dict[str, Any], label: str | None = None) -> None:
    from eft_eval.pipeline._report import format_table
    from eft_eval.stats import short_label

    # A long spec (paths, system prompts) is named by its short form; run.json holds it in full.
    model = label or short_label(str(results["model"]), 60)
    print(f"{results['task']} x {model}: {results['n_docs']} responses judged"
          + (f" (model spec in full in {folder}/run.json)" if model != (label or results["model"]) else ""))
    print(format_table([(Path(folder).name, results)]))
    print(f"wrote {folder}/run.json, samples.jsonl, results.json")


__all__ = ["add_run_arguments", "print_results", "quiet_logs", "run_from_args"]
