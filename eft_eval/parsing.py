"""Strict parsing of setting values that specs and config files share.

Booleans arrive as real bools (YAML `true`), as strings (`trust_remote_code=false` in a compact
spec, `"False"` quoted in YAML or JSON) or as 0/1. `bool("false")` is True, which once turned
`trust_remote_code=false` into remote code being run; every boolean setting goes through
`parse_bool` instead, and anything it does not recognise is an error naming the key and value.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class NumberRange:
    """Which numbers a setting allows: kind (whole or not), bounds, and whether `inf` means "none"."""

    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    allow_inf: bool = False

    def parse(self, value: Any, key: str, source: str) -> float | int:
        """`value` as a number of this range; else an error naming `source`, `key` and the range."""
        try:
            return _checked_number(value, self)
        except _Refused as reason:
            raise EFTEvalError(f"{source}: {key}={value!r} {reason} ({self.describe()})") from None

    def arg(self) -> Callable[[str], float | int]:
        """An argparse `type=` for this range; argparse prints the error as `argument --flag: 'nan'
        is not a finite number (expected ...)` and exits 2."""

        def convert(text: str) -> float | int:
            try:
                return _checked_number(text, self)
            except _Refused as reason:
                raise argparse.ArgumentTypeError(f"{text!r} {reason} ({self.describe()})") from None

        convert.__name__ = "int" if self.integer else "float"  # argparse names the type in some errors
        return convert

    def describe(self) -> str:
        """`expected a whole number >= 1`: the end of every error about this setting."""
        kind = "a whole number" if self.integer else "a number (inf allowed)" if self.allow_inf else "a finite number"
        low = None if self.minimum is None else f"{'>' if self.exclusive_minimum else '>='} {_bound(self.minimum)}"
        high = None if self.maximum is None else f"{'<' if self.exclusive_maximum else '<='} {_bound(self.maximum)}"
        bounds = " and ".join(bound for bound in (low, high) if bound)
        return f"expected {kind}{' ' + bounds if bounds else ''}"


def _bound(value: float) -> str:
    """`4294967295`, not `4.29497e+09`: a bound the user can type back exactly."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


class _Refused(ValueError):
    """Why a value is not a number of the range: `is out of range`, `is not a whole number`."""


def parse_number(value: Any, key: str, source: str, **limits: Any) -> float | int:
    """A finite number within [minimum, maximum] from a number or its text; else an error.

    `limits` are `NumberRange`'s fields. `nan` is never accepted; `inf` only with `allow_inf` (a
    limit that means "none"). Integers must be whole (`3`, not `3.5`); booleans are not numbers. The
    error names `key` and `source` and says which values are allowed, so the user can correct the one
    value at fault.
    """
    return NumberRange(**limits).parse(value, key, source)


def _checked_number(value: Any, allowed: NumberRange) -> float | int:
    if isinstance(value, bool):
        raise _Refused("is not a number")
    number: float | int
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        number = _number_from_text(value, allowed.integer)
    else:
        raise _Refused("is not a number")
    if isinstance(number, float):
        if math.isnan(number) or (math.isinf(number) and not allowed.allow_inf):
            raise _Refused("is not a finite number")
        if allowed.integer:
            if math.isinf(number) or not number.is_integer():
                raise _Refused("is not a whole number")
            number = int(number)
    if not _within(number, allowed):
        raise _Refused("is out of range")
    return number + 0.0 if isinstance(number, float) else number  # -0.0 is 0.0: its sign means nothing


# Python's int() and float() also read `1_000` and digits of other scripts (`١٢` is 12): a number is
# written with ASCII digits only, so what is read is what every other tool would read.
_PLAIN_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_PLAIN_FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
                          re.ASCII | re.IGNORECASE)


def _number_from_text(value: str, integer: bool) -> float | int:
    text = value.strip()
    try:
        number = int(text, 10) if integer else float(text)
    except ValueError:
        raise _Refused(f"is not {'a whole number' if integer else 'a number'}") from None
    if not (_PLAIN_INTEGER if integer else _PLAIN_FLOAT).fullmatch(text):
        raise _Refused("is not written with plain digits 0-9 (no '_' separators or other scripts' digits)")
    return number


def _within(number: float, allowed: NumberRange) -> bool:
    low, high = allowed.minimum, allowed.maximum
    too_small = low is not None and (number <= low if allowed.exclusive_minimum else number < low)
    too_large = high is not None and (number >= high if allowed.exclusive_maximum else number > high)
    return not (too_small or too_large)


def number_arg(**limits: Any) -> Callable[[str], float | int]:
    """An argparse `type=` that accepts what `parse_number` accepts (`limits`: `NumberRange`'s fields)."""
    return NumberRange(**limits).arg()


FLOAT32_TINY = 1.1754943508222875e-38
"""The smallest normal float32. The sampler divides float32 log-probs by the temperature; a smaller
positive temperature rounds to 0 there and every probability becomes NaN."""
SAMPLING_RANGES: dict[str, NumberRange] = {
    "max_new_tokens": NumberRange(integer=True, minimum=1),
    "temperature": NumberRange(minimum=0),  # 0: greedy; positive ones also need >= FLOAT32_TINY
    "top_p": NumberRange(minimum=0, exclusive_minimum=True, maximum=1),  # 1: off
    "top_k": NumberRange(integer=True, minimum=0),  # 0: off
}
"""The sampler's settings and the values each takes: the one statement of them that the library's
`SamplingConfig`, lm-eval's gen_kwargs and `--gen-kwargs` all check against."""
_TEMPERATURE = SAMPLING_RANGES["temperature"]
_TEMPERATURE_FORM = f"expected 0 for greedy or a finite number >= {FLOAT32_TINY:.2g}"


def temperature_arg(text: str) -> float | int:
    """An argparse `type=` for a sampling temperature: 0 (greedy) or one the sampler can divide by."""
    try:
        return _checked_temperature(text)
    except _Refused as reason:
        raise argparse.ArgumentTypeError(f"{text!r} {reason} ({_TEMPERATURE_FORM})") from None


def _checked_temperature(value: str) -> float | int:
    number = _checked_number(value, _TEMPERATURE)
    if 0 < number < FLOAT32_TINY:
        raise _Refused("is too small to divide by in float32")
    return number


temperature_arg.__name__ = "float"  # as number_arg's converters: named after what they return


def sampling_arg(name: str) -> Callable[[str], float | int]:
    """An argparse `type=` for the sampler's setting `name` (a key of `SAMPLING_RANGES`)."""
    return temperature_arg if name == "temperature" else SAMPLING_RANGES[name].arg()


GEN_KWARGS_FORM = "key=value,key=value,..."

# Generation kwargs the EFT sampler reads, and the values each takes (`temperature`: as
# `temperature_arg`, 0 is greedy as in lm-eval). lm-eval reads the text itself
# (`temperature=nan` becomes float nan, `top_p=1.5` passes), so they are checked here first.
_GEN_NUMBERS = {
    "top_p": SAMPLING_RANGES["top_p"],
    "top_k": SAMPLING_RANGES["top_k"],
    "max_gen_toks": SAMPLING_RANGES["max_new_tokens"],
}
_GEN_BOOLEANS = frozenset({"do_sample"})
_GEN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_gen_kwargs(text: str, source: str) -> dict[str, str]:
    """`do_sample=true,temperature=0.7` -> {key: value text}, checked as the EFT sampler will read it.

    The text is lm-eval's `--gen_kwargs` form, handed to lm-eval unchanged; this only refuses what
    lm-eval would crash on or read wrongly: an item without `=` (a traceback), a key given twice
    (the last silently wins), a key with spaces (` temperature` is an unknown key, silently
    ignored), and a sampling value that is not a number of its range or not a boolean.
    """
    try:
        return _gen_pairs(text)
    except _Refused as reason:
        raise EFTEvalError(f"{source} {text!r}: {reason}") from None


def gen_kwargs_arg(text: str) -> str:
    """An argparse `type=` for `--gen-kwargs`: the text itself once `parse_gen_kwargs` accepts it."""
    try:
        _gen_pairs(text)
    except _Refused as reason:
        raise argparse.ArgumentTypeError(str(reason)) from None
    return text


def _gen_pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue  # lm-eval skips empty items too: `a=1,` is `a=1`
        key, equals, value = item.partition("=")
        if not equals:
            raise _Refused(f"{item!r} is not key=value (expected {GEN_KWARGS_FORM})")
        if not _GEN_KEY.fullmatch(key):
            raise _Refused(f"key {key!r} is not a plain name (letters, digits and _, no spaces: {GEN_KWARGS_FORM})")
        if key in pairs:
            raise _Refused(f"{key} is given twice; give it once")
        _check_gen_value(key, value)
        pairs[key] = value
    return pairs


def _check_gen_value(key: str, value: str) -> None:
    if key == "temperature":
        try:
            _checked_temperature(value)
        except _Refused as reason:
            raise _Refused(f"{key}={value!r} {reason} ({_TEMPERATURE_FORM})") from None
    elif key in _GEN_NUMBERS:
        allowed = _GEN_NUMBERS[key]
        try:
            _checked_number(value, allowed)
        except _Refused as reason:
            raise _Refused(f"{key}={value!r} {reason} ({allowed.describe()})") from None
    elif key in _GEN_BOOLEANS and value.strip().lower() not in _TRUE | _FALSE:
        raise _Refused(f"{key}={value!r} is not a boolean (use true/false, yes/no or 1/0)")


def name_list_arg(text: str) -> str:
    """An argparse `type=` for a comma-separated list of names (`--judges a,b`): the text itself,
    once it names at least one. An empty list (`--judges ""` from an unset shell variable) would
    otherwise mean the default, which for `judge` is every judge, each one paid for."""
    if not any(name.strip() for name in text.split(",")):
        raise argparse.ArgumentTypeError(f"{text!r} names nothing (expected NAME[,NAME...]; leave the flag out "
                                         "for the default)")
    return text


SEED_MAX = 2**32 - 1
"""The largest seed: `run` hands its seed to numpy's legacy seeding (through lm-eval), which takes
0..2**32-1; every command takes that range, so a seed that works in one command works in all."""


def count_arg(minimum: int = 1, maximum: int | None = None) -> Callable[[str], float | int]:
    """A whole-number flag (a count, a size, a limit) of at least `minimum`."""
    return number_arg(integer=True, minimum=minimum, maximum=maximum)


def seed_arg() -> Callable[[str], float | int]:
    """A seed flag: a whole number 0..SEED_MAX."""
    return number_arg(integer=True, minimum=0, maximum=SEED_MAX)


PORT_RANGE = NumberRange(integer=True, minimum=1, maximum=65535)
"""A TCP port. Port 0 (the system picks one) is refused: `serve` prints the address it serves on
before binding, so the address it printed would be wrong."""


def port_arg() -> Callable[[str], float | int]:
    """A TCP port flag (`PORT_RANGE`)."""
    return PORT_RANGE.arg()


__all__ = [
    "FLOAT32_TINY",
    "GEN_KWARGS_FORM",
    "PORT_RANGE",
    "SAMPLING_RANGES",
    "SEED_MAX",
    "NumberRange",
    "count_arg",
    "gen_kwargs_arg",
    "name_list_arg",
    "number_arg",
    "parse_bool",
    "parse_gen_kwargs",
    "parse_number",
    "port_arg",
    "seed_arg",
    "sampling_arg",
    "temperature_arg",
]
