"""Lazy re-exports for package `__init__`s (PEP 562): a public name is imported from its private
module on first use, so importing a package (and `eft-eval --help`) does not import torch or scipy.

    _EXPORTS = {"EFTSpec": "_spec", ...}          # public name -> private module of the package
    __getattr__ = lazy_exports(__name__, _EXPORTS)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The module-level `__getattr__` of `package`, resolving the names of `exports` lazily."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__


__all__ = ["lazy_exports"]
