"""`eft-eval analyze ...`: analyses of models and results (each a module in ANALYZE_MODULES)."""

from __future__ import annotations

import importlib
from typing import Any

# Modules exposing `register(analyze_subparsers)`; each adds one analysis.
ANALYZE_MODULES: tuple[str, ...] = (
    "eft_eval.analysis.tv_command",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("analyze", help="run an analysis (tv: token-level EFT vs fine-tuned model)")
    analyze_subparsers = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    for module_name in ANALYZE_MODULES:
        importlib.import_module(module_name).register(analyze_subparsers)
