"""Registering the `eft` model with lm-eval, without importing lm-eval (or torch) before it is used.

lm-eval has no entry-point discovery for models, so `import eft_eval` must register `eft` itself.
Importing lm-eval's registry eagerly would cost every `import eft_eval` (and `eft-eval --help`)
about 60 ms even when lm-eval is never used. Instead `install()` registers right away if lm-eval is
already imported, and otherwise leaves a one-shot import hook that registers the moment `lm_eval`
is first imported. What gets registered is lm-eval's own lazy placeholder
("module:Class"), so torch and the backend are only imported when a run asks for `model="eft"`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # this module is imported by `import eft_eval`: only `sys` at run time
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

MODEL_NAME = "eft"
BACKEND_TARGET = "eft_eval.lm_eval._backend:EFTLM"


def register() -> None:
    """Register `eft` in lm-eval's model registry (idempotent)."""
    # lm-eval's own backends first: `get_model` only imports `lm_eval.models` (which registers
    # `hf`, `vllm`, ...) while the registry is empty, so registering into an empty registry
    # would hide them.
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=BACKEND_TARGET)


class _RegisterOnImport:
    """A `sys.meta_path` finder that finds nothing itself: when `lm_eval` is about to be imported,
    it makes lm-eval's loader register `eft` right after the package body has run. One-shot."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "lm_eval":
            return None
        _remove_hook()
        import importlib.util

        spec = importlib.util.find_spec(fullname)  # the normal finders, now without this one
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader: Any = spec.loader
        run_package_body = loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            try:
                run_package_body(module)
            finally:
                del loader.exec_module  # back to the loader's own method
            try:
                register()
            except Exception as error:  # noqa: BLE001  (never break lm-eval itself because of the plugin)
                _warn(error)

        loader.exec_module = exec_then_register
        return spec


def _warn(error: Exception) -> None:
    import logging

    logging.getLogger(__name__).warning("could not register the eft model with lm-eval: %s", error)


def _remove_hook() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegisterOnImport)]


def install() -> None:
    """Make `model="eft"` available to lm-eval: now if it is imported, else when it is."""
    if "lm_eval" in sys.modules:
        try:
            register()
        except Exception as error:  # noqa: BLE001  (a broken lm-eval must not break `import eft_eval`)
            _warn(error)
        return
    if not any(isinstance(finder, _RegisterOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())


__all__ = ["BACKEND_TARGET", "MODEL_NAME", "install", "register"]
