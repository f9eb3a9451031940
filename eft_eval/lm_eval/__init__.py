"""The lm-eval adapter: EFT models as lm-eval's `eft` model, and the `eft-eval lm-eval` command.

    _backend.py       the `eft` backend (`EFTLM`, an lm-eval `TemplateLM`)
    _generated.py     `GeneratedText`: a response string with its token count and finish reason
    _args.py          lm-eval's `--model_args` string -> an `EFTSpec` plus backend options
    _gen_kwargs.py    lm-eval gen_kwargs -> the EFT sampler's settings, each value checked
    _chat.py          chat contexts under `--apply_chat_template`, rendered per component
    _runtime.py       devices, several processes (accelerate), the request cache scoped to one model
    _registration.py  registering `eft` with lm-eval (on every `import eft_eval`)
    commands.py       `eft-eval lm-eval ARGS...`: lm-eval's own CLI with `eft` registered

The package is named after the library it adapts; every import in it is absolute, so `import
lm_eval` always means the real lm-eval. This `__init__` runs on every `import eft_eval` (through
`_registration`): public names are re-exported lazily, so it imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

if __name__ != "eft_eval.lm_eval":
    # Imported as a top-level `lm_eval`: a script was run from inside `eft_eval/`, which puts that
    # folder on sys.path. Fail here, by name, rather than deep inside lm-eval's own imports.
    raise ImportError(
        f"{__file__} was imported as {__name__!r}, hiding the real lm-eval: run eft-eval as "
        "`eft-eval ...` or `python -m eft_eval.cli ...`, not as a script inside eft_eval/"
    )

_EXPORTS = {
    "EFTLM": "_backend",
    "GeneratedText": "_generated",
    "length_fields": "_generated",
    "Conversation": "_chat",
    "conversation_marker": "_chat",
    "MessageMarkerChat": "_chat",
    "parse_model_spec": "_args",
    "split_model_args": "_args",
    "MODEL_NAME": "_registration",
    "register": "_registration",
    "run_lm_eval": "commands",
}

__all__ = [
    "EFTLM",
    "MODEL_NAME",
    "Conversation",
    "GeneratedText",
    "MessageMarkerChat",
    "conversation_marker",
    "length_fields",
    "parse_model_spec",
    "register",
    "run_lm_eval",
    "split_model_args",
]

if TYPE_CHECKING:
    from eft_eval.lm_eval._args import parse_model_spec, split_model_args
    from eft_eval.lm_eval._backend import EFTLM
    from eft_eval.lm_eval._chat import (
        Conversation,
        MessageMarkerChat,
        conversation_marker,
    )
    from eft_eval.lm_eval._generated import GeneratedText, length_fields
    from eft_eval.lm_eval._registration import MODEL_NAME, register
    from eft_eval.lm_eval.commands import run_lm_eval


__getattr__ = lazy_exports(__name__, _EXPORTS)
