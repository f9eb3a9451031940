"""Building the `eft-eval` command tree from `commands.py` modules. Ground floor: imports nothing of ours.

Every feature package has a `commands.py` whose `register(subparsers)` adds its sub-commands. A
package with several (`bench decode`, `analyze tv`) adds one group and lists its modules; this
module builds both levels, so a package's `commands.py` never imports `eft_eval.cli` (which imports
the packages' `commands.py`).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Any


class CommandParser(argparse.ArgumentParser):
    """The parser of every `eft-eval` command and sub-command: long options only as written.

    argparse expands any unique prefix of a long option by default, so `judge --model gpt-4o`
    silently meant `--model-label` and the judge model stayed the default. Abbreviations are off
    whatever the caller asks; `add_subparsers` builds sub-parsers of the parent's class, so every
    level of the command tree inherits this.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)


def register_modules(subparsers: Any, modules: Sequence[str]) -> None:
    """Let each module (dotted name, imported now) add its sub-commands through `register(subparsers)`."""
    for module_name in modules:
        importlib.import_module(module_name).register(subparsers)


def register_group(subparsers: Any, name: str, help: str, dest: str, modules: Sequence[str]) -> None:
    """A command with sub-commands (`bench decode`, `analyze tv`), each from a `register` module."""
    parser = subparsers.add_parser(name, help=help)
    group = parser.add_subparsers(dest=dest, metavar=dest.upper(), required=True)
    register_modules(group, modules)


__all__ = ["CommandParser", "register_group", "register_modules"]
