"""Studies and sweeps: a grid of EFT models run as one command, then analysed.

    _study.py     study plugin files (`studies/*.yaml`): grid, placeholders, presets -> grid points
    _grid.py      grid variables: lists, labelled values, ranges counted before they are expanded
    _variables.py `--set NAME=VALUE`: the text typed, typed only where the study declares a number
    _batched.py   generation for grid points sharing components: one batched pass, per-row weights
    _generation.py  the generation step: each model loaded once, grid points batched, per-point stores
    _sweep.py     `eft-eval sweep`: every grid point through a run's stages, resumable, sharded, listed
    commands.py   the `sweep` command

Public names are re-exported lazily, so `eft-eval --help` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "GridPoint": "_study",
    "Study": "_study",
    "discover_studies": "_study",
    "find_study": "_study",
    "load_study": "_study",
    "summarize_study": "_study",
    "DEFAULT_MAX_POINTS": "_grid",
    "SweepOptions": "_sweep",
    "prepare_points": "_sweep",
    "run_config": "_sweep",
    "generate_all": "_generation",
    "SweepResult": "_sweep",
    "run_sweep": "_sweep",
    "list_commands": "_sweep",
    "generate_points": "_batched",
}

__all__ = [
    "DEFAULT_MAX_POINTS",
    "GridPoint",
    "Study",
    "SweepOptions",
    "SweepResult",
    "discover_studies",
    "find_study",
    "generate_all",
    "generate_points",
    "list_commands",
    "load_study",
    "prepare_points",
    "run_config",
    "run_sweep",
    "summarize_study",
]

if TYPE_CHECKING:
    from eft_eval.sweep._batched import generate_points
    from eft_eval.sweep._generation import generate_all
    from eft_eval.sweep._grid import DEFAULT_MAX_POINTS
    from eft_eval.sweep._study import (
        GridPoint,
        Study,
        discover_studies,
        find_study,
        load_study,
        summarize_study,
    )
    from eft_eval.sweep._sweep import (
        SweepOptions,
        SweepResult,
        list_commands,
        prepare_points,
        run_config,
        run_sweep,
    )


__getattr__ = lazy_exports(__name__, _EXPORTS)
