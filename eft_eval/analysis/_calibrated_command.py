"""`eft-eval analyze calibrated`: a judge's mean corrected by a random sample of human labels (PPI++).

Registration imports nothing heavy; the handler imports numpy and scipy lazily.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from eft_eval.parsing import number_arg
from eft_eval.stats import DEFAULT_CONFIDENCE_LEVEL

_RUN_HELP = "a run folder (eft-eval run) or a judged samples.jsonl"
_LABELS_HELP = ("human labels: a human-study project (or its labels.jsonl), or any JSONL of "
                "{\"doc_id\": ..., \"label\": ...} with a number or a boolean (\"any error\") per line")
_DESCRIPTION = (
    "For each judge: the judge's mean alone, the humans' alone, and the prediction-powered (PPI++) "
    "estimate, each with its interval, and the effective number of human labels the judge was worth "
    "(n * var(humans only) / var(PPI)). PPI needs labels drawn at random from the run's items (a uniform "
    "random subset of what the judge scored); a human-study adjudication project (the disagreements "
    "only) is not one and is refused. Writes OUT/calibrated.json and .csv.")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("calibrated", help="judge scores corrected by a random sample of human labels (PPI)",
                              description=_DESCRIPTION)
    p.add_argument("run", metavar="RUN", help=_RUN_HELP)
    p.add_argument("--labels", required=True, metavar="FILE", help=_LABELS_HELP)
    p.add_argument("--judge", dest="judges", action="append", required=True, metavar="NAME",
                   help="a judge whose scores are corrected (repeatable)")
    p.add_argument("--threshold", type=number_arg(), default=None,
                   help="with boolean labels, the judge's 'any error' is score >= THRESHOLD (default: the human "
                        "study's error threshold, else 1)")
    p.add_argument("--lambda", dest="lam", type=number_arg(minimum=0, maximum=1), default=None, metavar="LAMBDA",
                   help="fixed weight of the judge's scores (1: plain PPI; default: tuned, PPI++)")
    p.add_argument("--run-b", metavar="RUN_B", help=f"a second run ({_RUN_HELP}): also report B - A, corrected "
                   "the same way (independent runs: the variances add)")
    p.add_argument("--labels-b", metavar="FILE", help="RUN_B's own random human labels (required with --run-b)")
    p.add_argument("--confidence", type=number_arg(minimum=0, exclusive_minimum=True, maximum=1,
                                                   exclusive_maximum=True),
                   default=DEFAULT_CONFIDENCE_LEVEL,
                   help=f"interval confidence level (default {DEFAULT_CONFIDENCE_LEVEL})")
    p.add_argument("--output", "-o", type=Path, default=Path("analysis"),
                   help="folder for calibrated.json and .csv (default ./analysis)")
    p.add_argument("--include-path", action="append", default=[], metavar="DIR",
                   help="folder with judge YAML files (the folders each run recorded in run.json are read anyway)")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    p.set_defaults(handler=_calibrated)


def _calibrated(args: argparse.Namespace) -> int:
    from eft_eval.analysis._calibrated import analyze_calibrated
    from eft_eval.analysis._study_commands import _print

    result = analyze_calibrated(args.run, args.labels, args.judges, args.output, threshold=args.threshold,
                                confidence_level=args.confidence, lam=args.lam, run_b=args.run_b,
                                labels_b=args.labels_b, include_paths=args.include_path)
    return _print(result, args.json)
