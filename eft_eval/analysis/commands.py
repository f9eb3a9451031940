"""`eft-eval analyze ...`: analyses of models and results (each a module in ANALYZE_MODULES)."""

from __future__ import annotations

from typing import Any

# Modules exposing `register(analyze_subparsers)`; each adds one analysis.
ANALYZE_MODULES: tuple[str, ...] = (
    "eft_eval.analysis.tv_command",
)


def register(subparsers: Any) -> None:
    from eft_eval.cli import register_group

    register_group(subparsers, "analyze", "run an analysis (tv: token-level EFT vs fine-tuned model)", "analysis",
                   ANALYZE_MODULES)
