"""Strict parsing of setting values that specs and config files share.

Booleans arrive as real bools (YAML `true`), as strings (`trust_remote_code=false` in a compact
spec, `"False"` quoted in YAML or JSON) or as 0/1. `bool("false")` is True, which once turned
`trust_remote_code=false` into remote code being run; every boolean setting goes through
`parse_bool` instead, and anything it does not recognise is an error naming the key and value.
"""

from __future__ import annotations

from typing import Any

from eft_eval.errors import EFTEvalError

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def parse_bool(value: Any, key: str, source: str) -> bool:
    """True/False from a bool, 0/1, or true/false/1/0/yes/no in any case; else an error.

    `key` and `source` name the setting in the error (`spec 'base=...': trust_remote_code='maybe'
    is not a boolean ...`).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise EFTEvalError(f"{source}: {key}={value!r} is not a boolean (use true/false, yes/no or 1/0)")


__all__ = ["parse_bool"]
