"""`eft-eval judge`: judge an existing JSONL of responses. Registration imports nothing heavy."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from eft_eval.parsing import count_arg, name_list_arg
from eft_eval.runfolder import JUDGE_CACHE_FILE


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "judge",
        help="judge responses in a JSONL file with LLM judges",
        description="Judge {query, response} JSONL records (or lm-eval --log_samples output) with one or "
        "more judges; write DIR/samples.jsonl and DIR/results.json. Re-running resumes from the cache.",
    )
    parser.add_argument("--input", nargs="+", required=True, metavar="FILE", help="JSONL file(s) to judge")
    parser.add_argument("--judges", type=name_list_arg, default=None, help="comma-separated judge names (default: all)")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for samples.jsonl and results.json")
    add_judge_arguments(parser)
    parser.add_argument("--model-label", default=None, help="the `model` recorded for each row")
    parser.add_argument("--query-field", default=None, help="lm-eval samples: the doc field holding the user prompt")
    parser.add_argument("--limit", type=count_arg(), default=None, help="judge only the first N records")
    parser.set_defaults(handler=_run)


def add_judge_arguments(
    parser: argparse.ArgumentParser, include_help: str = "extra folder of judge YAML files (repeatable)"
) -> None:
    """Judge flags, shared with any command that judges (e.g. the pipeline's `run`): one per row of
    `JUDGE_SETTINGS`, defaults from `JudgeConfig`, and the cache, progress and `--cancel` flags.

    `include_help` describes `--include-path` for commands whose folders also hold tasks or studies.
    """
    from eft_eval.judging._config import JUDGE_SETTINGS, JudgeConfig
    from eft_eval.settings import add_arguments

    group = parser.add_argument_group("judging")
    group.add_argument("--include-path", action="append", default=[], metavar="DIR", help=include_help)
    add_arguments(group, JUDGE_SETTINGS, JudgeConfig())
    group.add_argument("--cache-dir", default=None,
                       help="folder of judge-cache.sqlite (default $EFT_EVAL_CACHE_DIR or ~/.cache/eft-eval)")
    group.add_argument("--no-cache", action="store_true", help="ask again instead of reusing cached answers")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument("--cancel", action="store_true",
                       help="with --judge-mode batch: cancel this run's recorded batches instead of judging")


def config_from_args(args: argparse.Namespace) -> Any:
    """A `JudgeConfig` from the flags of `add_judge_arguments` (through `JUDGE_SETTINGS`)."""
    from eft_eval.errors import EFTEvalError
    from eft_eval.judging._config import JUDGE_SETTINGS, JudgeConfig, default_cache_path
    from eft_eval.settings import build

    if args.cancel and args.judge_mode != "batch":
        raise EFTEvalError("--cancel cancels Batch API batches: give it with --judge-mode batch")
    if args.no_cache:
        cache_path = None
    elif args.cache_dir:
        cache_path = Path(args.cache_dir) / JUDGE_CACHE_FILE
    else:
        cache_path = default_cache_path()
    return build(JudgeConfig, JUDGE_SETTINGS, vars(args), cache_path=cache_path, progress=not args.no_progress)


def quiet_http_logs(args: argparse.Namespace) -> None:
    """The HTTP client logs every request at INFO; that buries the progress bar (kept with -v)."""
    if not getattr(args, "verbose", False):
        for name in ("httpx2", "httpx", "openai"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    from eft_eval.judging._files import cancel_output_batches, judge_files

    quiet_http_logs(args)
    if args.cancel:  # --judge-mode batch --cancel: nothing is judged
        cancelled = cancel_output_batches(args.output, config_from_args(args))
        print(f"cancelled {len(cancelled)} batch(es){': ' + ', '.join(cancelled) if cancelled else ''}")
        return 0
    names = [name.strip() for name in args.judges.split(",") if name.strip()] if args.judges else None
    results = judge_files(
        args.input, names, args.output, config_from_args(args), include_paths=args.include_path,
        model_label=args.model_label, query_field=args.query_field, limit=args.limit,
    )
    from eft_eval.judging._table import format_results_table

    print(f"{results['n_items']} responses judged" + (f" ({args.model_label})" if args.model_label else ""))
    print(format_results_table([(Path(args.output).name, {"task": "judge", **results})]))  # as samples.jsonl says
    print(f"wrote {Path(args.output) / 'samples.jsonl'} and {Path(args.output) / 'results.json'}")
    return 0
