"""Where the built-in plugin folders (`judges/`, `tasks/`, `studies/`, `human_study/`) live.

In a source checkout or editable install they sit at the repository root; in a wheel they are
shipped inside the package as `eft_eval/_builtin/<kind>` (see pyproject.toml).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from eft_eval.errors import EFTEvalError

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


def check_plugin_name(name: object, key: str, source: str) -> str:
    """`name` if it can be one folder name; else a one-line error naming `key` in `source`.

    A task's, study's or judge's name becomes part of output paths (`runs/TASK/...`,
    `studies-out/STUDY`): a separator or `..` in it would write outside the output folder, so
    neither is a name. (Judge files are stricter still: letters, digits, `_`, `-`, `.`.)
    """
    if not isinstance(name, str) or not name.strip():
        raise EFTEvalError(f"{source}: {key} must be a non-empty string, got {name!r}")
    separators = {"/", "\\", *(sep for sep in (os.sep, os.altsep) if sep)}
    if any(sep in name for sep in separators) or ".." in name or name.startswith(".") or not name.isprintable():
        raise EFTEvalError(f"{source}: {key} {name!r} is not a plain name (no path separators, no '..', no leading "
                           "'.'): it names output folders; rename it")
    return name


__all__ = ["PluginKind", "builtin_dir", "check_plugin_name", "plugin_dirs"]
