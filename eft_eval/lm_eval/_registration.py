"""Registering the `eft` model with lm-eval.

lm-eval has no entry-point discovery for models, so `import eft_eval` registers `eft` itself. What
gets registered is lm-eval's own lazy placeholder ("module:Class"): importing lm-eval's registry
costs about 30 ms, and torch and the backend are only imported when a run asks for `model="eft"`.
"""

from __future__ import annotations

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


def install() -> None:
    """`register()`, but a broken lm-eval only warns: it must not break `import eft_eval`."""
    try:
        register()
    except Exception as error:  # noqa: BLE001
        import logging

        logging.getLogger(__name__).warning("could not register the eft model with lm-eval: %s", error)


__all__ = ["BACKEND_TARGET", "MODEL_NAME", "install", "register"]
