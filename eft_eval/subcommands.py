"""Building the `eft-eval` command tree from `commands.py` modules. Ground floor: imports nothing of ours.

Every feature package has a `commands.py` whose `register(subparsers)` adds its sub-commands. A
package with several (`bench decode`, `analyze tv`) adds one group and lists its modules; this
module builds both levels, so a package's `commands.py` never imports `eft_eval.cli` (which imports
the packages' `commands.py`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any


def register_modules(subparsers: Any, modules: Sequence[str]) -> None:
    """Let each module (dotted name, imported now) add its sub-commands through `register(subparsers)`."""
    for module_name in modules:
        importlib.import_module(module_name).register(subparsers)


def register_group(subparsers: Any, name: str, help: str, dest: str, modules: Sequence[str]) -> None:
    """A command with sub-commands (`bench decode`, `analyze tv`), each from a `register` module."""
    parser = subparsers.add_parser(name, help=help)
    group = parser.add_subparsers(dest=dest, metavar=dest.upper(), required=True)
    register_modules(group, modules)


__all__ = ["register_group", "register_modules"]
