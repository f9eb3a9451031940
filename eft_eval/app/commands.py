"""`eft-eval run`, `report`, `list`, `demo`, `human-study` and `analyze`: the commands that combine packages.

`run` is the pipeline's run followed by the HTML report, `demo` a run, a sweep and a report, `list`
names what runs and sweeps can use, and `human-study report` and `analyze tv` write their pages with
the report's renderer. Registration imports nothing heavy.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from eft_eval.analysis import commands as analysis_commands
from eft_eval.parsing import count_arg
from eft_eval.pipeline.commands import add_run_arguments
from eft_eval.report import commands as report_commands
from eft_eval.report import human_study_page, token_tv_page
from eft_eval.study import commands as study_commands


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run", help="generate with a (EFT) model on a task, judge every response, aggregate",
        description="Generate with lm-eval and the eft backend, judge every response concurrently, write "
        "DIR/run.json, DIR/samples.jsonl and DIR/results.json. Re-running the same command resumes: "
        "finished generations and judgments are reused.",
    )
    add_run_arguments(run)
    run.set_defaults(handler=_run)

    report_commands.register(subparsers)

    listing = subparsers.add_parser("list", help="list tasks, judges, presets and studies")
    listing.add_argument("sections", nargs="*", metavar="SECTION",
                         help="tasks, judges, presets and/or studies (default: all)")
    listing.add_argument("--include-path", action="append", default=[], metavar="DIR",
                         help="extra task/judge/study folder")
    listing.set_defaults(handler=_list)

    demo = subparsers.add_parser(
        "demo", help="run the whole pipeline offline on SmolLM2-135M-Instruct (a few minutes on a CPU)",
        description="eft-eval run demo with an EFT model built from SmolLM2-135M-Instruct (beta=1.5 reward "
        "amplification: no base model of that family is available offline), judged offline by the local backend; "
        "then a 3-point helpful-harmless frontier sweep (studies/demo_frontier.yaml) into DIR/frontier, whose alpha 1 "
        "is judged against alpha 0 pair by pair in both orders (win rate, position inconsistency), and one HTML "
        "report of both, DIR/report.html, whose path it prints last.",
    )
    demo.add_argument("--output", default="runs/demo", metavar="DIR", help="run folder (default runs/demo)")
    demo.add_argument("--limit", type=count_arg(), default=6, help="prompts (default 6)")
    demo.add_argument("--max-new-tokens", type=count_arg(), default=48, help="tokens per response (default 48)")
    demo.add_argument("--frontier-limit", type=count_arg(0), default=3,
                      help="prompts of the 3-point helpful-harmless frontier sweep (default 3; 0 skips it)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(handler=_demo)

    study_commands.register(subparsers, page=human_study_page)
    analysis_commands.register(subparsers, tv_page=token_tv_page)
    analysis_commands.register_pairwise(subparsers)


def _run(args: argparse.Namespace) -> int:
    from eft_eval.pipeline.commands import run_from_args

    result = run_from_args(args)
    if result is not None and not args.no_html:
        from eft_eval.report import REPORT_FILE, ReportOptions, write_report

        path = write_report([result.folder.root], result.folder.root / REPORT_FILE,
                            ReportOptions(include_paths=list(args.include_path)))
        print(f"wrote {path} (open it in a browser)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from eft_eval.app._listing import SECTIONS, listing
    from eft_eval.errors import EFTEvalError

    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        raise EFTEvalError(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    print(listing(args.sections or SECTIONS, args.include_path))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from eft_eval.app._demo import (
        DEMO_BETA,
        DEMO_NOTES,
        FRONTIER_FOLDER,
        run_demo,
        run_demo_frontier,
        write_demo_report,
    )
    from eft_eval.pipeline.commands import print_results, quiet_logs

    quiet_logs(args)
    started = time.monotonic()
    print(f"eft-eval demo: task demo, {args.limit} prompts, model SmolLM2-135M-Instruct (GGUF) as EFT: base = ref = "
          f"plain dialogue prompt, ft = chat template, beta={DEMO_BETA} (reward amplification: no pre-trained "
          "model of that family is available offline); judged offline by the same model (local backend)",
          file=sys.stderr)
    result = run_demo(args.output, limit=args.limit, max_new_tokens=args.max_new_tokens, progress=not args.no_progress)
    for row in result.rows[:3]:
        print(f"\n[{row['doc'].get('category', '')}] {row['query']}\n  -> {row['response'].strip()[:200]}")
    print()
    print_results(str(result.folder.root), result.results, label="SmolLM2-135M-Instruct EFT")
    frontier = None
    if args.frontier_limit > 0:
        frontier = Path(args.output) / FRONTIER_FOLDER
        print(f"\nfrontier: helpful and harmless system-prompt deltas on SmolLM2-135M-Instruct, alpha 0, 0.5, 1, "
              f"{args.frontier_limit} prompts, into {frontier}", file=sys.stderr)
        run_demo_frontier(frontier, limit=args.frontier_limit, progress=not args.no_progress)
        _print_pairwise(frontier)
    report = write_demo_report(args.output, frontier, Path(args.output) / "report.html")
    print()
    for note in DEMO_NOTES:
        print(textwrap.fill(note, width=100) + "\n")
    print(f"demo finished in {time.monotonic() - started:.0f} s")
    print(f"report: {report.resolve()}")
    return 0


def _print_pairwise(sweep_folder: Path) -> None:
    """The demo study's win-rate table (`pairwise:` in studies/demo_frontier.yaml), as the sweep prints it."""
    from eft_eval.analysis import format_pairwise_table
    from eft_eval.fileio import read_json_object
    from eft_eval.runfolder import RESULTS_FILE, SweepFolder

    for folder in SweepFolder(sweep_folder).pairwise_folders():
        print(f"\npairwise win rates ({folder}):\n{format_pairwise_table(read_json_object(folder / RESULTS_FILE))}")


__all__ = ["register"]
