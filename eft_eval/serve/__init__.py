"""`eft-eval serve`: EFT models behind an OpenAI-compatible API, with batched decoding.

    eft-eval serve --model base=L,ft=S_CHAT,ref=S --served-name eft --port 8000

From Python: `create_app(BatchEngine(model), ServeSettings(served_name=...))` is an ASGI app.
Names load lazily: `eft-eval --help` imports this package's `commands` and must stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "BatchEngine": "_engine",
    "Row": "_engine",
    "RowEvent": "_engine",
    "TokenEvent": "_engine",
    "DoneEvent": "_engine",
    "ErrorEvent": "_engine",
    "Limits": "_completions",
    "lead_component_index": "_completions",
    "ServeSettings": "_app",
    "create_app": "_app",
}

__all__ = ["BatchEngine", "DoneEvent", "ErrorEvent", "Limits", "Row", "RowEvent", "ServeSettings", "TokenEvent",
           "create_app", "lead_component_index"]

if TYPE_CHECKING:
    from eft_eval.serve._app import ServeSettings, create_app
    from eft_eval.serve._completions import Limits, lead_component_index
    from eft_eval.serve._engine import BatchEngine, DoneEvent, ErrorEvent, Row, RowEvent, TokenEvent

__getattr__ = lazy_exports(__name__, _EXPORTS)
