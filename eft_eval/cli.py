"""The `eft-eval` command. Thin: it parses arguments and calls the library.

Each feature area registers its own sub-commands from a small `commands.py` module, so this file
only lists them. Registration must not import torch: `eft-eval --help` stays instant.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence

from eft_eval import __version__
from eft_eval.errors import EFTEvalError
from eft_eval.subcommands import CommandParser, register_modules

# Modules exposing `register(subparsers)`; each adds its sub-commands.
COMMAND_MODULES: tuple[str, ...] = (
    "eft_eval.app.commands",  # run, report, list, demo, human-study, analyze: the main job first
    "eft_eval.sweep.commands",  # sweep: a study's grid of runs
    "eft_eval.models.commands",
    "eft_eval.judging.commands",
    "eft_eval.lm_eval.commands",
    "eft_eval.bench.commands",
    "eft_eval.serve.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="eft-eval",
        description="Evaluate emulated fine-tuning (EFT) language models.",
    )
    parser.add_argument("--version", action="version", version=f"eft-eval {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_modules(subparsers, COMMAND_MODULES)
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
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:  # a path the user chose: theirs to shorten
            print(f"eft-eval: error: {_name_too_long(error)}", file=sys.stderr)
            return 2
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and error.filename:
            print(f"eft-eval: error: {error.filename}: {error.strerror} (check its permissions, or choose a path "
                  "you can write; files already finished are kept)", file=sys.stderr)
            return 2
        # A full disk or quota is the user's to fix, not a bug: one line (files are written
        # atomically or append-only, so what was finished is intact). Other OSErrors stay loud.
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"eft-eval: error: {where}{error.strerror}; finished work is kept: free some space and re-run the "
              "same command to resume", file=sys.stderr)
        return 2
    return int(result or 0)


def _name_too_long(error: OSError) -> str:
    """One line naming the path whose name (or one of its folders' names) the file system refuses."""
    where = f"{error.filename}: " if error.filename else ""
    return (f"{where}file name too long for this file system (most allow 255 bytes per name; files are "
            "written through a temporary name about 16 bytes longer): choose a shorter name")


__all__ = ["COMMAND_MODULES", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
