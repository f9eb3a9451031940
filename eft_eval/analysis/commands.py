"""`eft-eval analyze ...`: analyses of models and results.

`analyze tv` writes its page with the report's renderer, which sits above this package: the top
layer (`app/commands.py`) registers the group and hands that renderer in, as it does for the human study.
"""

from __future__ import annotations

from typing import Any

from eft_eval.analysis import _calibrated_command, _pairwise_command, _study_commands, _tv_command


def register(subparsers: Any, tv_page: _tv_command.TokenTVPage) -> None:
    parser = subparsers.add_parser("analyze", help="analyse finished runs (scaling, frontier, top-p, compare, "
                                                   "power, agreement, calibrated) or EFT tokens (tv)")
    group = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    _tv_command.register(group, tv_page)
    _study_commands.register(group)  # scaling, frontier, top-p, compare, power, agreement
    _calibrated_command.register(group)


def register_pairwise(subparsers: Any) -> None:
    """`eft-eval pairwise`: a top-level command (it judges), registered by `app/commands.py`."""
    _pairwise_command.register(subparsers)


__all__ = ["register", "register_pairwise"]
