"""Judge flags for judging at paper scale: Batch API, prices and budget, several samples per judge.

Added to every command that judges through `commands.add_judge_arguments` (judge, run, sweep).
Kept apart so the shared argument list stays short; `JUDGE_SETTINGS` maps them to `JudgeConfig`.
"""

from __future__ import annotations

import argparse
from typing import Any

from eft_eval.parsing import count_arg, number_arg


def add_scale_arguments(group: Any) -> None:
    group.add_argument("--judge-mode", choices=("live", "batch"), default="live",
                       help="live: one request per answer; batch: OpenAI's Batch API (half the price, answers "
                       "within 24 h; a killed run re-attaches to its batches)")
    group.add_argument("--batch-fallback", choices=("batch", "live"), default="batch",
                       help="batch mode: ask failed lines and unreadable answers again in a follow-up batch "
                       "(default) or live")
    group.add_argument("--cancel", action="store_true",
                       help="with --judge-mode batch: cancel this run's recorded batches instead of judging")
    # At most a day: a batch answers within 24 h, so a longer interval is a typo that would stall the run.
    group.add_argument("--batch-poll-interval", type=number_arg(minimum=0, exclusive_minimum=True, maximum=86400),
                       default=30.0, metavar="S",
                       help="batch mode: seconds between two polls of a batch (default 30)")
    group.add_argument("--prices", default=None, metavar="FILE",
                       help="price table YAML replacing the shipped one (USD per 1M tokens; docs/formats.md)")
    group.add_argument("--budget", type=number_arg(minimum=0), default=None, metavar="USD",
                       help="stop before starting judging whose estimated cost exceeds USD; never spend past it")
    group.add_argument("--judge-samples", type=count_arg(), default=1, metavar="K",
                       help="ask each judge K times per response (distinct seeds) and score the response by the "
                       "judge's aggregation; results report the judge-noise share of the standard error")


def check_scale_arguments(args: argparse.Namespace) -> None:
    """What the flags above cannot say alone; their values go to `JudgeConfig` through `JUDGE_SETTINGS`."""
    from eft_eval.errors import EFTEvalError

    if args.cancel and args.judge_mode != "batch":
        raise EFTEvalError("--cancel cancels Batch API batches: give it with --judge-mode batch")
    if args.batch_poll_interval <= 0:
        raise EFTEvalError(f"--batch-poll-interval must be positive, got {args.batch_poll_interval}")
