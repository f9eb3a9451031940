"""`eft-eval report`: re-aggregate finished runs, print one table, optionally write the HTML report.

Registration imports nothing heavy: the handler imports the library when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
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


def _report(args: argparse.Namespace) -> int:
    from eft_eval.pipeline import format_table, report_folder
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


__all__ = ["register"]
