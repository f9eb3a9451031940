"""The `eft-eval` command. Thin: it parses arguments and calls the library.

Each feature area registers its own sub-commands from a small `commands.py` module, so this file
only lists them. Registration must not import torch: `eft-eval --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from eft_eval import __version__
from eft_eval.errors import EFTEvalError

# Modules exposing `register(subparsers)`; each adds its sub-commands.
COMMAND_MODULES: tuple[str, ...] = (
    "eft_eval.pipeline.commands",  # run, report, list, demo: the main job first
    "eft_eval.models.commands",
    "eft_eval.judging.commands",
    "eft_eval.lm_eval_cli",
    "eft_eval.analysis.commands",
    "eft_eval.study.commands",
    "eft_eval.bench.commands",
)


def register_group(subparsers: Any, name: str, help: str, dest: str, modules: Sequence[str]) -> None:
    """A command with sub-commands (`bench decode`, `analyze tv`), each from a `register` module."""
    parser = subparsers.add_parser(name, help=help)
    group = parser.add_subparsers(dest=dest, metavar=dest.upper(), required=True)
    for module_name in modules:
        importlib.import_module(module_name).register(group)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eft-eval",
        description="Evaluate emulated fine-tuning (EFT) language models.",
    )
    parser.add_argument("--version", action="version", version=f"eft-eval {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        result = args.handler(args)
    except EFTEvalError as error:
        print(f"eft-eval: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eft-eval: interrupted; finished work is kept, re-run the same command to resume", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
