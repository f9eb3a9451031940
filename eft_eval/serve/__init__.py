"""`eft-eval serve`: EFT models behind an OpenAI-compatible API, with batched decoding.

    eft-eval serve --model base=L,ft=S_CHAT,ref=S --served-name eft --port 8000

From Python: `create_app(BatchEngine(model), ServeSettings(served_name=...))` is an ASGI app.
Names load lazily: `eft-eval --help` imports this package's `commands` and must stay instant.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BatchEngine": "eft_eval.serve._engine",
    "Row": "eft_eval.serve._engine",
    "Limits": "eft_eval.serve._completions",
    "ServeSettings": "eft_eval.serve._app",
    "create_app": "eft_eval.serve._app",
}

__all__ = ["BatchEngine", "Limits", "Row", "ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
