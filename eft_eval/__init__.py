"""eft-eval: evaluate emulated fine-tuning (EFT) language models.

Public names are re-exported here; heavy dependencies (torch, transformers) are imported lazily so
that `import eft_eval` and `eft-eval --help` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "EFTModel": "eft_eval.models.eft_model",
    "Generation": "eft_eval.models.decoding",
    "EFTSpec": "eft_eval.models.spec",
    "ComponentSpec": "eft_eval.models.spec",
    "DeltaSpec": "eft_eval.models.spec",
    "parse_spec": "eft_eval.models.spec",
    "compose_logprobs": "eft_eval.models.compose",
    "EFTLM": "eft_eval.models.lm_eval_backend",
}

if TYPE_CHECKING:  # pragma: no cover
    from eft_eval.models.compose import compose_logprobs
    from eft_eval.models.decoding import Generation
    from eft_eval.models.eft_model import EFTModel
    from eft_eval.models.lm_eval_backend import EFTLM
    from eft_eval.models.spec import ComponentSpec, DeltaSpec, EFTSpec, parse_spec


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

# `import eft_eval` is enough for `lm_eval.simple_evaluate(model="eft", ...)`: registers with
# lm-eval now if it is imported, else the moment it is (no lm-eval / torch import here).
from eft_eval.models import lm_eval_registration as _lm_eval_registration

_lm_eval_registration.install()
