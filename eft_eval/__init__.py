"""eft-eval: evaluate emulated fine-tuning (EFT) language models.

Public names are re-exported here; heavy dependencies (torch, transformers) are imported lazily so
that `import eft_eval` and `eft-eval --help` stay fast. `import eft_eval` is enough for
`lm_eval.simple_evaluate(model="eft", ...)`: it registers the `eft` model with lm-eval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eft_eval.lm_eval import _registration

__version__ = "0.1.0"

_LAZY = {  # name -> the package that exports it (lazily too)
    "EFTModel": "eft_eval.models",
    "Generation": "eft_eval.models",
    "EFTSpec": "eft_eval.models",
    "ComponentSpec": "eft_eval.models",
    "DeltaSpec": "eft_eval.models",
    "parse_spec": "eft_eval.models",
    "compose_logprobs": "eft_eval.models",
    "EFTLM": "eft_eval.lm_eval",
}

if TYPE_CHECKING:  # pragma: no cover
    from eft_eval.lm_eval import EFTLM
    from eft_eval.models import (
        ComponentSpec,
        DeltaSpec,
        EFTModel,
        EFTSpec,
        Generation,
        compose_logprobs,
        parse_spec,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eft_eval' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "EFTLM",
    "ComponentSpec",
    "DeltaSpec",
    "EFTModel",
    "EFTSpec",
    "Generation",
    "__version__",
    "compose_logprobs",
    "parse_spec",
]

_registration.install()
