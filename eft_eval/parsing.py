"""Strict parsing of setting values that specs and config files share.

Booleans arrive as real bools (YAML `true`), as strings (`trust_remote_code=false` in a compact
spec, `"False"` quoted in YAML or JSON) or as 0/1. `bool("false")` is True, which once turned
`trust_remote_code=false` into remote code being run; every boolean setting goes through
`parse_bool` instead, and anything it does not recognise is an error naming the key and value.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
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


def parse_number(
    value: Any,
    key: str,
    source: str,
    *,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    allow_inf: bool = False,
) -> float | int:
    """A finite number within [minimum, maximum] from a number or its text; else an error.

    `nan` is never accepted; `inf` only with `allow_inf` (a limit that means "none"). Integers must
    be whole (`3`, not `3.5`); booleans are not numbers. The error names `key` and `source` and
    says which values are allowed, so the user can correct the one value at fault.
    """
    expected = _expected(integer, minimum, maximum, exclusive_minimum, allow_inf)
    if isinstance(value, bool):
        raise EFTEvalError(f"{source}: {key}={value!r} is not a number ({expected})")
    number: float | int
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text, 10) if integer else float(text)
        except ValueError:
            raise EFTEvalError(f"{source}: {key}={value!r} is not {'a whole number' if integer else 'a number'} "
                               f"({expected})") from None
    else:
        raise EFTEvalError(f"{source}: {key}={value!r} is not a number ({expected})")
    if isinstance(number, float):
        if math.isnan(number) or (math.isinf(number) and not allow_inf):
            raise EFTEvalError(f"{source}: {key}={value!r} is not a finite number ({expected})")
        if integer:
            if math.isinf(number) or not number.is_integer():
                raise EFTEvalError(f"{source}: {key}={value!r} is not a whole number ({expected})")
            number = int(number)
    too_small = minimum is not None and (number <= minimum if exclusive_minimum else number < minimum)
    too_large = maximum is not None and number > maximum
    if too_small or too_large:
        raise EFTEvalError(f"{source}: {key}={value!r} is out of range ({expected})")
    return number


def _expected(integer: bool, minimum: float | None, maximum: float | None, exclusive_minimum: bool,
              allow_inf: bool) -> str:
    kind = "a whole number" if integer else "a finite number" if not allow_inf else "a number (inf allowed)"
    low = None if minimum is None else (f"> {minimum:g}" if exclusive_minimum else f">= {minimum:g}")
    high = None if maximum is None else f"<= {maximum:g}"
    bounds = " and ".join(b for b in (low, high) if b)
    return f"expected {kind}{' ' + bounds if bounds else ''}"


def number_arg(
    *,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    allow_inf: bool = False,
) -> Callable[[str], float | int]:
    """An argparse `type=` that accepts what `parse_number` accepts; argparse prints the error
    as `argument --flag: invalid value ...` with the allowed range, and exits 2."""

    def convert(text: str) -> float | int:
        try:
            return parse_number(text, "value", "option", integer=integer, minimum=minimum, maximum=maximum,
                                exclusive_minimum=exclusive_minimum, allow_inf=allow_inf)
        except EFTEvalError as error:
            raise argparse.ArgumentTypeError(
                f"{text!r} ({_expected(integer, minimum, maximum, exclusive_minimum, allow_inf)})"
            ) from error

    convert.__name__ = "int" if integer else "float"
    return convert


__all__ = ["number_arg", "parse_bool", "parse_number"]
