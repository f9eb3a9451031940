"""`eft-eval analyze ...`: analyses of models and results (each a module in ANALYZE_MODULES)."""

from __future__ import annotations

from typing import Any

from eft_eval.subcommands import register_group

# Modules exposing `register(analyze_subparsers)`; each adds one analysis.
ANALYZE_MODULES: tuple[str, ...] = (
    "eft_eval.analysis._tv_command",
    "eft_eval.analysis._study_commands",  # scaling, frontier, top-p, compare, agreement
)


def register(subparsers: Any) -> None:
    register_group(subparsers, "analyze", "analyse finished runs (scaling, frontier, top-p, compare, agreement) or EFT "
                                          "tokens (tv)", "analysis",
                   ANALYZE_MODULES)
