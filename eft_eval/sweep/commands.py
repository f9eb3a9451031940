"""`eft-eval sweep STUDY`. Registration imports nothing heavy."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from eft_eval.judging.commands import add_judge_arguments, config_from_args
from eft_eval.parsing import number_arg
from eft_eval.sweep._grid import DEFAULT_MAX_POINTS


def register(subparsers: Any) -> None:
    sweep = subparsers.add_parser(
        "sweep", help="run every grid point of a study (studies/*.yaml), then its analysis",
        description="Run each grid point of STUDY (a name from `eft-eval list studies` or a study YAML file) "
        "through `eft-eval run` into DIR/runs/LABEL/, then the study's analysis into DIR/analysis/. Grid points "
        "over the same models are generated together in one batched pass, each model loaded once. Re-running "
        "resumes: finished generations and judgments are reused.",
    )
    sweep.add_argument("study", metavar="STUDY", help="a study name (e.g. frontier, scaling, top_p, demo_frontier) "
                       "or a study YAML file")
    sweep.add_argument("--output", metavar="DIR", help="study folder (default studies-out/STUDY)")
    sweep.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assignments",
                       help="set a study variable, e.g. --set family=qwen2.5 (repeatable): the text as typed, "
                            "a number where "
                       "the study's default is one, null to unset")
    sweep.add_argument("--list", action="store_true",
                       help="print one `eft-eval run ...` command per grid point (for SLURM arrays or any scheduler)")
    sweep.add_argument("--shard", metavar="I/N", help="run only the I-th of N shares of the grid (1-based)")
    sweep.add_argument("--analyze-only", action="store_true",
                       help="analyse the runs that have finished; say which are missing")
    sweep.add_argument("--max-points", type=number_arg(integer=True, minimum=1), default=DEFAULT_MAX_POINTS,
                       metavar="N", help="refuse a study whose grid has more than N points, counted before it is "
                       f"expanded (default {DEFAULT_MAX_POINTS:,}): a range with a tiny step is a typo, not a study")
    from eft_eval.pipeline import RUN_SETTINGS
    from eft_eval.settings import add_arguments

    runs = sweep.add_argument_group("run settings (override the study's)")
    add_arguments(runs, RUN_SETTINGS, help={
        "judges": "comma-separated judge names",
        "batch_size": "prompts per decoding block (all grid points' rows of a block are decoded together)"})
    add_judge_arguments(sweep, include_help="extra folder of studies, task YAMLs or judge YAMLs (repeatable)")
    sweep.set_defaults(handler=_sweep, _parser=sweep)


def _sweep(args: argparse.Namespace) -> int:
    from eft_eval.judging import JUDGE_SETTINGS
    from eft_eval.pipeline import RUN_SETTINGS
    from eft_eval.pipeline.commands import quiet_logs
    from eft_eval.settings import parsed
    from eft_eval.sweep._study import find_study, load_study
    from eft_eval.sweep._sweep import (
        SweepOptions,
        cancel_sweep_batches,
        list_commands,
        parse_shard,
        run_sweep,
    )
    from eft_eval.sweep._variables import parse_assignments

    quiet_logs(args)
    overrides = parsed(RUN_SETTINGS, vars(args))
    path = find_study(args.study, args.include_path)
    study = load_study(path, overrides, parse_assignments(args.assignments), max_points=args.max_points)
    parser: argparse.ArgumentParser = args._parser
    # The study's judge settings (e.g. the demo's local backend) apply unless the flag was given.
    given = {setting.dest for setting in JUDGE_SETTINGS
             if setting.study and getattr(args, setting.dest) != parser.get_default(setting.dest)}
    judge = config_from_args(args)
    study = dataclasses.replace(study, points=[_with_judge(point, given) for point in study.points])
    options = SweepOptions(
        output=Path(args.output or Path("studies-out") / study.name), include_paths=list(args.include_path),
        judge=judge, judge_cache_in_run=not (args.cache_dir or args.no_cache),
        shard=parse_shard(args.shard) if args.shard else None, progress=not args.no_progress,
    )
    if args.list:
        print("\n".join(list_commands(study, options)))
        return 0
    if args.cancel:  # --judge-mode batch --cancel: nothing is generated, judged, analysed or reported
        return 1 if cancel_sweep_batches(study, options).failed else 0
    result = run_sweep(study, options, analyze_only=args.analyze_only)
    # One report of the whole study, not of a share.
    if options.shard is None or args.analyze_only:
        from eft_eval.report import write_folder_report

        print(f"wrote {write_folder_report(options.output, include_paths=options.include_paths)} (open "
              "it in a browser)")
    _print_results(options.output, result)
    if result.failed:
        return 1
    return 0


def _print_results(output: Path, result: Any) -> None:
    """The sweep ends with its numbers in the terminal: each finished run's results, then the study's
    analysis table and its pairwise win-rate tables."""
    from eft_eval.fileio import read_json_object
    from eft_eval.judging import format_results_table
    from eft_eval.runfolder import SweepFolder

    sweep = SweepFolder(output)
    reports = [(label, read_json_object(sweep.run(label).results, missing_ok=True)) for label in result.finished]
    if reports:
        print(format_results_table(reports, costs=False))
    if result.analysis and result.analysis.get("table"):
        print(f"\n{result.analysis['kind']} analysis:\n{result.analysis['table']}")
    if result.pairwise:  # the study's `pairwise:`: win rates against its reference point
        from eft_eval.analysis import format_pairwise_table

        for folder, results in result.pairwise:
            print(f"\npairwise win rates ({folder}):\n{format_pairwise_table(results)}")


def _with_judge(point: Any, given: set[str]) -> Any:
    return dataclasses.replace(point, judge={k: v for k, v in point.judge.items() if k not in given})


__all__ = ["register"]
