"""`eft-eval bench ...`: speed and memory benchmarks, each printing ratios measured in one run."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eft_eval.parsing import count_arg
from eft_eval.subcommands import register_group

# Modules exposing `register(bench_subparsers)`; each adds one benchmark.
BENCH_MODULES: tuple[str, ...] = (
    "eft_eval.bench._decode",
    "eft_eval.bench._speculative",
    "eft_eval.bench._judge",
    "eft_eval.bench._sweep",
    "eft_eval.bench._serve",
    "eft_eval.bench._inspect",
)


def register(subparsers: Any) -> None:
    register_group(subparsers, "bench", "run a benchmark (decode, judge, speculative, sweep, serve, inspect)",
                   "benchmark", BENCH_MODULES)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


TINY_SIZES = ("small_hidden", "small_layers", "large_hidden", "large_layers")
"""The tiny family's sizes (`testing.save_tiny_family`'s keywords), each a flag of the benches that build one."""


def add_tiny_family_arguments(parser: argparse.ArgumentParser, **defaults: int) -> None:
    """`--small-hidden N` etc. for the sizes in `defaults` (this bench's defaults); the others keep
    `save_tiny_family`'s."""
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=count_arg(), default=default)


def tiny_family(folder: Path, args: argparse.Namespace) -> dict[str, Path]:
    """The tiny family of the sizes `args` gives, saved under `folder`: role -> model folder."""
    from eft_eval.testing import save_tiny_family

    return save_tiny_family(folder, **{name: getattr(args, name) for name in TINY_SIZES if hasattr(args, name)})


def upscaling_spec(family: dict[str, Path]) -> str:
    """EFT up-scaling of a tiny family: the large base with the small models' behaviour delta."""
    return f"base={family['large_base']},ft={family['small_ft']},ref={family['small_base']}"


def measure_in_temp_folder(measure: Callable[[Path, argparse.Namespace], dict[str, Any]],
                           args: argparse.Namespace) -> int:
    """`measure(folder, args)` in a fresh temporary folder (models, runs), then its result printed."""
    with tempfile.TemporaryDirectory() as folder:
        result = measure(Path(folder), args)
    print_result(result, args.json)
    return 0


def print_result(result: dict[str, Any], as_json: bool) -> None:
    """One JSON object (for scripts and notes) or an aligned key/value table (for people)."""
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>36}  {value}")
