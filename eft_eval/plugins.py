"""Where the built-in plugin folders (`judges/`, `tasks/`, `studies/`, `human_study/`) live.

In a source checkout or editable install they sit at the repository root; in a wheel they are
shipped inside the package as `eft_eval/_builtin/<kind>` (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

PluginKind = Literal["judges", "tasks", "studies", "human_study"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def builtin_dir(kind: PluginKind) -> Path:
    """The folder holding the built-in plugins of one kind."""
    for candidate in (_PACKAGE_DIR / "_builtin" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"built-in plugin folder {kind!r} not found next to {_PACKAGE_DIR}")


def plugin_dirs(kind: PluginKind, include_paths: list[str | Path] | None = None) -> list[Path]:
    """Built-in folder first, then the user's `--include-path` folders in the order given."""
    return [builtin_dir(kind), *(Path(p) for p in include_paths or [])]
