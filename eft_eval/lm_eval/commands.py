"""`eft-eval lm-eval ARGS...`: lm-eval's own command line, with the `eft` model registered.

lm-eval finds models only in its registry (no entry points), so its `lm-eval` command cannot see
`eft`. This command registers the backend and hands every argument, untouched, to lm-eval's CLI:

    eft-eval lm-eval --model eft --model_args base=B,ft=F,ref=R --tasks hellaswag --output_path out/
    accelerate launch --num_processes 4 -m eft_eval.cli lm-eval --model eft ...   # split the work
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lm-eval",
        help="run lm-eval's CLI with the 'eft' model available (all lm-eval flags pass through)",
        description="Run lm-eval with the 'eft' model registered; try `eft-eval lm-eval --help`.",
        add_help=False,  # `--help` is lm-eval's
        # No option prefixes: every argument, `--model` and `--help` included, is lm-eval's.
        prefix_chars="\0",
    )
    parser.add_argument("lm_eval_args", nargs=argparse.REMAINDER, metavar="LM_EVAL_ARGS")
    parser.set_defaults(handler=lambda args: run_lm_eval(args.lm_eval_args))


def run_lm_eval(argv: Sequence[str]) -> int:
    """Run lm-eval's CLI on `argv` (without the program name) with `eft` registered."""
    from lm_eval.__main__ import cli_evaluate

    from eft_eval.lm_eval._args import carry_model_args_unparsed
    from eft_eval.lm_eval._registration import register as register_eft

    register_eft()
    saved = sys.argv
    # lm-eval's CLI reads sys.argv itself, and would type an `eft` run's model_args values itself.
    sys.argv = ["lm-eval", *carry_model_args_unparsed(argv)]
    try:
        cli_evaluate()
    finally:
        sys.argv = saved
    return 0


__all__ = ["register", "run_lm_eval"]
