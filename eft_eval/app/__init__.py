"""The top floor: what combines a run, a sweep and the report (`eft-eval demo`, `run`, `list`).

    from eft_eval.app import run_demo
    result = run_demo("runs/demo")

Nothing in the project imports this package; it may import every other one. Public names are
re-exported lazily: `eft-eval --help` imports `eft_eval.app.commands`, and that must not pull in
torch through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "DEMO_BETA": "_demo",
    "DEMO_NOTES": "_demo",
    "demo_spec": "_demo",
    "run_demo": "_demo",
    "run_demo_frontier": "_demo",
    "write_demo_report": "_demo",
    "SECTIONS": "_listing",
    "listing": "_listing",
}

__all__ = [
    "DEMO_BETA",
    "DEMO_NOTES",
    "SECTIONS",
    "demo_spec",
    "listing",
    "run_demo",
    "run_demo_frontier",
    "write_demo_report",
]

if TYPE_CHECKING:
    from eft_eval.app._demo import (
        DEMO_BETA,
        DEMO_NOTES,
        demo_spec,
        run_demo,
        run_demo_frontier,
        write_demo_report,
    )
    from eft_eval.app._listing import SECTIONS, listing


__getattr__ = lazy_exports(__name__, _EXPORTS)
