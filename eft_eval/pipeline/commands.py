"""`eft-eval run`, `report`, `list` and `demo`. Registration imports nothing heavy."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from eft_eval.judging.commands import (
    add_judge_arguments,
    config_from_args,
    quiet_http_logs,
)
from eft_eval.parsing import count_arg, gen_kwargs_arg, name_list_arg, seed_arg


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run", help="generate with a (EFT) model on a task, judge every response, aggregate",
        description="Generate with lm-eval and the eft backend, judge every response concurrently, write "
        "DIR/run.json, DIR/samples.jsonl and DIR/results.json. Re-running the same command resumes: "
        "finished generations and judgments are reused.",
    )
    run.add_argument("task", metavar="TASK", help="a task name (`eft-eval list`), e.g. hh, hh_harmless, eli5, demo")
    model = run.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="a model or EFT spec: PATH_OR_HUB_ID, 'base=...,ft=...,ref=...[,beta=..]', a spec YAML")
    model.add_argument("--preset", help="FAMILY:CONFIG, e.g. llama2:up, smollm2:down (`eft-eval list presets`)")
    run.add_argument("--judges", type=name_list_arg, help="comma-separated judge names (default: the task's judges)")
    run.add_argument("--output", metavar="DIR", help="run folder (default runs/TASK/MODEL_LABEL-DIGEST-seedSEED; DIGEST covers the model, data and generation settings)")
    run.add_argument("--limit", type=count_arg(), help="run only the first N documents of the task's selection")
    run.add_argument("--seed", type=seed_arg(), default=0, help="selects the task's documents and seeds sampling (default 0)")
    run.add_argument("--data-files", nargs="+", default=[], metavar="FILE",
                     help="local .jsonl/.jsonl.gz files replacing the task's hub data set")
    run.add_argument("--max-new-tokens", type=count_arg(), help="override the task's max_gen_toks")
    run.add_argument("--gen-kwargs", type=gen_kwargs_arg,
                     help="lm-eval generation kwargs, e.g. do_sample=true,temperature=0.7")
    run.add_argument("--batch-size", type=count_arg(), default=8, help="prompts per decoding batch (default 8)")
    run.add_argument("--dtype", choices=["auto", "bf16", "fp16", "fp32"], help="override every component's dtype")
    run.add_argument("--device", help="override every component's device (cpu, cuda, cuda:1, auto)")
    run.add_argument("--no-html", action="store_true", help="do not write DIR/report.html")
    add_judge_arguments(run, include_help="extra folder of task YAMLs (lm-eval format) or judge YAMLs (repeatable)")
    run.set_defaults(handler=_run)

    report = subparsers.add_parser("report", help="aggregate a run's judged samples again and print the results",
                                   description="Recompute DIR/results.json from DIR/samples.jsonl (after "
                                   "`eft-eval judge` or edits) and print one table for all DIRs.")
    report.add_argument("folders", nargs="+", metavar="DIR",
                        help="run folders, sweep/study folders (runs/*/ and their analyses), human-study projects")
    report.add_argument("--include-path", action="append", default=[], metavar="DIR", help="extra judge folder")
    report.add_argument("--html", metavar="OUT.html", help="also write one self-contained HTML report of all DIRs "
                        "(configuration, results, figures, every sample with the judges' reasoning)")
    report.add_argument("--title", help="title of the HTML report")
    report.set_defaults(handler=_report)

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
        "then a 3-point helpful-harmless frontier sweep (studies/demo_frontier.yaml) into DIR/frontier, and one HTML "
        "report of both, DIR/report.html, whose path it prints last.",
    )
    demo.add_argument("--output", default="runs/demo", metavar="DIR", help="run folder (default runs/demo)")
    demo.add_argument("--limit", type=count_arg(), default=6, help="prompts (default 6)")
    demo.add_argument("--max-new-tokens", type=count_arg(), default=48, help="tokens per response (default 48)")
    demo.add_argument("--frontier-limit", type=count_arg(0), default=3,
                      help="prompts of the 3-point helpful-harmless frontier sweep (default 3; 0 skips it)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(handler=_demo)


def _quiet(args: argparse.Namespace) -> None:
    """lm-eval logs every step at INFO and warns about settings we pass on purpose; -v shows them."""
    quiet_http_logs(args)
    if not getattr(args, "verbose", False):
        logging.getLogger("lm_eval").setLevel(logging.ERROR)


def _run(args: argparse.Namespace) -> int:
    from eft_eval.pipeline._run import RunConfig, run_task

    _quiet(args)
    judge = config_from_args(args)
    config = RunConfig(
        task=args.task, model=args.model, preset=args.preset, output=args.output,
        judges=[n.strip() for n in args.judges.split(",") if n.strip()] if args.judges else None,
        judge=judge, judge_cache_in_run=not (args.cache_dir or args.no_cache), limit=args.limit, seed=args.seed,
        include_paths=list(args.include_path), data_files=list(args.data_files), max_new_tokens=args.max_new_tokens,
        gen_kwargs=args.gen_kwargs, batch_size=args.batch_size, dtype=args.dtype, device=args.device,
        progress=not args.no_progress,
    )
    result = run_task(config)
    if "cancelled_batches" in result.results:
        print(f"cancelled {len(result.results['cancelled_batches'])} batch(es) recorded in {result.folder.root}")
        return 0
    _print_results(str(result.folder.root), result.results)
    if not args.no_html:
        from eft_eval.report import REPORT_FILE, ReportOptions, write_report

        path = write_report([result.folder.root], result.folder.root / REPORT_FILE,
                            ReportOptions(include_paths=list(args.include_path)))
        print(f"wrote {path} (open it in a browser)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from eft_eval.pipeline._report import format_table, report_folder
    from eft_eval.report import (
        ReportOptions,
        refuse_input_as_output,
        run_folders_in,
        write_report,
    )

    if args.html:  # refused before any results.json is rewritten
        refuse_input_as_output(args.folders, Path(args.html))
    reports = [(str(folder), report_folder(folder, args.include_path)) for folder in run_folders_in(args.folders)]
    if reports:
        print(format_table(reports))
    elif not args.html:
        print("no run folders to re-aggregate; add --html OUT.html for a report of the given folders")
    if args.html:
        path = write_report(args.folders, args.html, ReportOptions(title=args.title, include_paths=args.include_path))
        print(f"wrote {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from eft_eval.errors import EFTEvalError
    from eft_eval.pipeline._listing import SECTIONS, listing

    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        raise EFTEvalError(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    print(listing(args.sections or SECTIONS, args.include_path))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from eft_eval.pipeline._demo import (
        DEMO_BETA,
        DEMO_NOTES,
        FRONTIER_FOLDER,
        run_demo,
        run_demo_frontier,
        write_demo_report,
    )

    _quiet(args)
    started = time.monotonic()
    print(f"eft-eval demo: task demo, {args.limit} prompts, model SmolLM2-135M-Instruct (GGUF) as EFT: base = ref = "
          f"plain dialogue prompt, ft = chat template, beta={DEMO_BETA} (reward amplification: no pre-trained "
          "model of that family is available offline); judged offline by the same model (local backend)",
          file=sys.stderr)
    result = run_demo(args.output, limit=args.limit, max_new_tokens=args.max_new_tokens, progress=not args.no_progress)
    for row in result.rows[:3]:
        print(f"\n[{row['doc'].get('category', '')}] {row['query']}\n  -> {row['response'].strip()[:200]}")
    print()
    _print_results(str(result.folder.root), result.results, label="SmolLM2-135M-Instruct EFT")
    frontier = None
    if args.frontier_limit > 0:
        frontier = Path(args.output) / FRONTIER_FOLDER
        print(f"\nfrontier: helpful and harmless system-prompt deltas on SmolLM2-135M-Instruct, alpha 0, 0.5, 1, "
              f"{args.frontier_limit} prompts, into {frontier}", file=sys.stderr)
        run_demo_frontier(frontier, limit=args.frontier_limit, progress=not args.no_progress)
    report = write_demo_report(args.output, frontier, Path(args.output) / "report.html")
    print()
    for note in DEMO_NOTES:
        print(textwrap.fill(note, width=100) + "\n")
    print(f"demo finished in {time.monotonic() - started:.0f} s")
    print(f"report: {report.resolve()}")
    return 0


def _print_results(folder: str, results: dict[str, Any], label: str | None = None) -> None:
    from eft_eval.pipeline._report import format_table

    print(f"{results['task']} x {label or results['model']}: {results['n_docs']} responses judged")
    print(format_table([(Path(folder).name, results)]))
    print(f"wrote {folder}/run.json, samples.jsonl, results.json")


__all__ = ["register"]
