"""`eft-eval report`: re-aggregate finished runs, print one table, optionally write the HTML report.

Registration imports nothing heavy: the handler imports the library when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    report = subparsers.add_parser("report", help="aggregate a run's judged samples again and print the results",
                                   description="Recompute the results from DIR/samples.jsonl (after `eft-eval "
                                   "judge` or edits) and print one table for all DIRs; --rewrite-results also "
                                   "writes them to DIR/results.json. The judge folders each run recorded in "
                                   "run.json are read again, with any --include-path.")
    report.add_argument("folders", nargs="+", metavar="DIR",
                        help="run folders, sweep/study folders (runs/*/ and their analyses), human-study projects")
    report.add_argument("--include-path", action="append", default=[], metavar="DIR",
                        help="extra judge folder (those the runs recorded in run.json are read anyway)")
    report.add_argument("--rewrite-results", action="store_true",
                        help="write the recomputed results to each DIR/results.json (default: print them only)")
    report.add_argument("--html", metavar="OUT.html", help="also write one self-contained HTML report of all DIRs "
                        "(configuration, results, figures, every sample with the judges' reasoning)")
    report.add_argument("--title", help="title of the HTML report")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from eft_eval.pipeline import format_table, report_folder
    from eft_eval.report import (
        ReportOptions,
        refuse_input_as_output,
        run_folders_in,
        write_report,
    )
    from eft_eval.runfolder import remembered_include_paths

    if args.html:  # refused before any results.json is rewritten
        refuse_input_as_output(args.folders, Path(args.html))
    folders = run_folders_in(args.folders)
    include_paths = remembered_include_paths(args.include_path, folders)
    reports = [(str(folder), report_folder(folder, include_paths, write=args.rewrite_results)) for folder in folders]
    if reports:
        print(format_table(reports))
    elif not args.html:
        print("no run folders to re-aggregate; add --html OUT.html for a report of the given folders")
    if args.html:
        path = write_report(args.folders, args.html, ReportOptions(title=args.title, include_paths=include_paths))
        print(f"wrote {path}")
    return 0


__all__ = ["register"]
