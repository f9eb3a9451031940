"""What a loaded run's samples say about the model that answered them.

A run folder's run.json holds the model spec (`model_spec`, EFTSpec.to_dict()). A bare samples
file has only each sample's `model` field: the compact spec string `eft-eval run` wrote
(`base=...,ft=...,ref=...,top_p_weights=0.9`), or a label (`eft-eval judge --model-label`). The
two cannot be told apart when the field has no `key=value` in it (`gpt2` is a plain model or a
label), so only a compact EFT spec is read; anything else leaves the settings unknown, and an
analysis that needs them refuses rather than guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError, short_repr


def _parsed(model: Any) -> dict[str, Any] | None:
    """The spec a `model` field names (EFTSpec.to_dict()), or None for a label or a plain name."""
    if not isinstance(model, str) or "=" not in model:
        return None
    # The package import is lazy: parsing a spec loads no torch.
    from eft_eval.models import parse_spec

    try:
        return parse_spec(model).to_dict()
    except EFTEvalError:
        return None


def check_one_model(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Refuse a file whose samples name different models: its scores would mix configurations.

    The same spec written two ways (keys in another order, `0.90` for `0.9`) is one model.
    """
    keys: dict[str, str] = {}  # model field -> what it names; each distinct text is parsed once

    def key(model: Any) -> str:
        text = json.dumps(model)
        if text not in keys:
            spec = _parsed(model)
            keys[text] = json.dumps(spec, sort_keys=True) if spec is not None else text
        return keys[text]

    first = rows[0].get("model")
    for index, row in enumerate(rows):
        if row.get("model") != first and key(row.get("model")) != key(first):
            count = len({key(r.get("model")) for r in rows})
            raise EFTEvalError(f"{path}: its samples name {count} different models (sample 1: {short_repr(first)}, "
                               f"sample {index + 1}: {short_repr(row.get('model'))}): give one file per configuration")


def samples_spec(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The spec the samples' `model` field names (they name one: `check_one_model`), or None."""
    return _parsed(rows[0].get("model")) if rows else None


def unknown_setting(path: Path, setting: str, rows: Sequence[Mapping[str, Any]]) -> EFTEvalError:
    """The one-line refusal for a run whose `setting` no file states."""
    model = rows[0].get("model") if rows else None
    return EFTEvalError(f"{path}: its {setting} is unknown: no run.json with the model spec beside it, and its "
                        f"samples' model field {short_repr(model)} is not an EFT spec (base=...,ft=...,ref=...); "
                        "analyse the run folder instead")
