"""`eft-eval bench ...`: speed and memory benchmarks, each printing ratios measured in one run."""

from __future__ import annotations

import argparse
import json
from typing import Any

from eft_eval.subcommands import register_group

# Modules exposing `register(bench_subparsers)`; each adds one benchmark.
BENCH_MODULES: tuple[str, ...] = (
    "eft_eval.bench._decode",
    "eft_eval.bench._speculative",
    "eft_eval.bench._judge",
    "eft_eval.bench._sweep",
    "eft_eval.bench._serve",
)


def register(subparsers: Any) -> None:
    register_group(subparsers, "bench", "run a benchmark (decode, judge, speculative, sweep, serve)",
                   "benchmark", BENCH_MODULES)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def print_result(result: dict[str, Any], as_json: bool) -> None:
    """One JSON object (for scripts and notes) or an aligned key/value table (for people)."""
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>36}  {value}")
