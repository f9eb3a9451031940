"""`eft-eval analyze scaling|frontier|top-p|compare|power|agreement`: the study analyses over run folders.

Registration imports nothing heavy; the handlers import numpy, scipy and matplotlib lazily.
Each writes OUT/<analysis>.json, .csv, .png, .svg (docs/formats.md) and prints a table.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import number_arg
from eft_eval.stats import add_bootstrap_arguments, settings_from_args

_RUN_HELP = "a run folder (eft-eval run) or a judged samples.jsonl"
_ROLES = ("small-ft", "large-ft", "up", "down")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("scaling", help="normalized improvement of up-/down-scaling (paper Figures 3, 4, 6)")
    for role in _ROLES:
        p.add_argument(f"--{role}", action="append", default=[], metavar="RUN",
                       required=role in ("small-ft", "large-ft"),
                       help=f"the {role} run ({_RUN_HELP}); repeat with --group for several tasks or families")
    p.add_argument("--group", action="append", default=[], metavar="NAME",
                   help="name of each group (task or family), in the order of the repeated run flags")
    _common(p, judges=True)
    p.set_defaults(handler=_scaling)

    p = subparsers.add_parser("frontier", help="helpful-harmless Pareto frontier of reward interpolation (Figure 5)")
    p.add_argument("runs", nargs="+", metavar="RUN", help=_RUN_HELP)
    p.add_argument("--x", required=True, metavar="JUDGE", help="judge on the x axis (e.g. helpfulness)")
    p.add_argument("--y", required=True, metavar="JUDGE", help="judge on the y axis (e.g. harm)")
    _common(p, judges=False)
    p.set_defaults(handler=_frontier)

    p = subparsers.add_parser("top-p", help="runs differing in top_p_weights, as the paper's Table 1")
    p.add_argument("runs", nargs="+", metavar="RUN", help=_RUN_HELP)
    _common(p, judges=True, bootstrap=False)
    p.set_defaults(handler=_top_p)

    p = subparsers.add_parser("compare", help="paired difference of two runs (bootstrap interval, Wilcoxon, sign test)")
    p.add_argument("run_a", metavar="RUN_A", help=_RUN_HELP)
    p.add_argument("run_b", metavar="RUN_B", help=_RUN_HELP)
    p.add_argument("--only-same-prompts", action="store_true",
                   help="pair only the prompts whose text is the same in both runs (default: refuse runs whose "
                        "prompts differ under one doc_id)")
    _common(p, judges=True)
    p.set_defaults(handler=_compare)

    p = subparsers.add_parser("power", help="from a pilot of two runs: the smallest difference its prompts detect, "
                                            "and the prompts a difference needs (paired)")
    p.add_argument("run_a", metavar="RUN_A", help=_RUN_HELP)
    p.add_argument("run_b", metavar="RUN_B", help=_RUN_HELP)
    p.add_argument("--effect", type=number_arg(minimum=0, exclusive_minimum=True), metavar="DELTA",
                   help="the difference B - A to detect, in the judge's score units: prints the paired prompts it "
                        "needs (with several judges of different scales, give one --judge)")
    p.add_argument("--power", type=number_arg(minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True),
                   default=0.8, help="probability of detecting a true difference (default 0.8)")
    p.add_argument("--alpha", type=number_arg(minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True),
                   default=0.05, help="two-sided significance level (default 0.05)")
    p.add_argument("--only-same-prompts", action="store_true",
                   help="pair only the prompts whose text is the same in both runs (as compare does)")
    _common(p, judges=True, bootstrap=False)
    p.set_defaults(handler=_power)

    p = subparsers.add_parser("agreement", help="judge versus judge on the same responses (agreement, kappa, Spearman)")
    p.add_argument("run_a", metavar="RUN_A", help=_RUN_HELP)
    p.add_argument("run_b", metavar="RUN_B", help=f"{_RUN_HELP}; the reference (e.g. judged by GPT-4)")
    p.add_argument("--judge", required=True,
                   help="the judge compared (its judgments in RUN_A); JUDGE@MODEL: one model of its jury")
    p.add_argument("--judge-b", help="the judge in RUN_B when its name differs (default: --judge)")
    p.add_argument("--threshold", type=number_arg(), default=1.0,
                   help="binary label: score >= THRESHOLD (default 1: factuality's 'any error')")
    _common(p, judges=False)
    p.set_defaults(handler=_agreement)


def _common(parser: argparse.ArgumentParser, judges: bool, bootstrap: bool = True) -> None:
    parser.add_argument("--output", "-o", type=Path, default=Path("analysis"),
                        help="folder for <analysis>.json, .csv, .png, .svg (default ./analysis)")
    if judges:
        parser.add_argument("--judge", dest="judges", action="append", metavar="JUDGE",
                            help="a judge to analyse (repeatable; default: every judge in the runs)")
    parser.add_argument("--include-path", action="append", default=[], metavar="DIR",
                        help="folder with judge YAML files, for a judge's direction (the folders each run "
                        "recorded in run.json are read anyway)")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    if bootstrap:
        add_bootstrap_arguments(parser)


def _print(result: dict[str, Any], as_json: bool) -> int:
    if as_json:
        import json

        from eft_eval.analysis._files import clean

        print(json.dumps(clean(result["data"]), indent=2))
    else:
        print(result["table"])
        print("wrote " + ", ".join(result["files"]))
    return 0


def _scaling(args: argparse.Namespace) -> int:
    from eft_eval.analysis import analyze_scaling

    flags = {role: getattr(args, role.replace("-", "_")) for role in _ROLES}
    count = len(flags["small-ft"])
    for role, paths in flags.items():
        if paths and len(paths) != count:
            raise EFTEvalError(f"--{role} is given {len(paths)} times but --small-ft {count} times: one per group")
    if count > 1 and len(args.group) != count:
        raise EFTEvalError(f"{count} groups of runs need {count} --group names (got {len(args.group)})")
    groups = [{"name": args.group[i] if args.group else None,
               "runs": {role: paths[i] for role, paths in flags.items() if paths}} for i in range(count)]
    result = analyze_scaling(groups[0]["runs"] if count == 1 else None, args.output,
                             groups=groups if count > 1 else None, judges=args.judges,
                             settings=settings_from_args(args), include_paths=args.include_path)
    return _print(result, args.json)


def _frontier(args: argparse.Namespace) -> int:
    from eft_eval.analysis import analyze_frontier

    return _print(analyze_frontier(args.runs, args.x, args.y, args.output, settings=settings_from_args(args),
                                   include_paths=args.include_path), args.json)


def _top_p(args: argparse.Namespace) -> int:
    from eft_eval.analysis import analyze_top_p

    return _print(analyze_top_p(args.runs, args.output, judges=args.judges, include_paths=args.include_path), args.json)


def _compare(args: argparse.Namespace) -> int:
    from eft_eval.analysis import analyze_compare

    return _print(analyze_compare(args.run_a, args.run_b, args.output, judges=args.judges,
                                  settings=settings_from_args(args), include_paths=args.include_path,
                                  only_same_prompts=args.only_same_prompts), args.json)


def _power(args: argparse.Namespace) -> int:
    from eft_eval.analysis import analyze_power

    return _print(analyze_power(args.run_a, args.run_b, args.output, judges=args.judges, effect=args.effect,
                                power=args.power, alpha=args.alpha, include_paths=args.include_path,
                                only_same_prompts=args.only_same_prompts), args.json)


def _agreement(args: argparse.Namespace) -> int:
    from eft_eval.analysis import analyze_judge_agreement

    return _print(analyze_judge_agreement(args.run_a, args.run_b, args.judge, args.output, judge_b=args.judge_b,
                                          threshold=args.threshold, settings=settings_from_args(args),
                                          include_paths=args.include_path), args.json)
