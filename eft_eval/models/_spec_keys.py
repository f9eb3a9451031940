"""Which model each spec key names: one role, one key.

A spec names its models by role: `base` (alias `model`), then one `ft`/`ref` pair per delta,
numbered `ft`, `ft2`, `ft3`, ... (`ft1`/`ref1` are aliases of `ft`/`ref`); `<role>_<field>` sets
one component's field and `wN` the N-th delta's weight. Several spellings of one role are what
made a spec silently mean another model (`model=` replacing `base=`, `ft1=` replacing `ft=`,
`ft0=` becoming the first delta and moving the user's `ft` to second place, under `alpha` and
`top_p_weights`). So every key is reduced to its role here, and a role named twice, an index
with a leading zero, index 0 or a gap in the numbering (`ft3` without `ft2`) is an error naming
the keys, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import parse_number

COMPONENT_FIELDS = ("format", "system_prompt", "dtype", "device", "revision")
_ROLE_KEY = re.compile(r"^(base|model|ft|ref)(\d*)(?:_(" + "|".join(COMPONENT_FIELDS) + r"))?$")
_WEIGHT_KEY = re.compile(r"^w(\d+)$")


@dataclass(frozen=True)
class RoleKey:
    """What a key names: a role (`base`, `ft`, `ref`), a delta index (1 for base, ft, ref) and
    a field (None: the model itself)."""

    role: str
    index: int = 1
    field: str | None = None

    @property
    def name(self) -> str:
        """The documented spelling: `base`, `ft`, `ref2`, `ft2_dtype`, ..."""
        role = self.role if self.index == 1 else f"{self.role}{self.index}"
        return role if self.field is None else f"{role}_{self.field}"

    @property
    def model(self) -> RoleKey:
        return RoleKey(self.role, self.index)


@dataclass
class RoleKeys:
    """The role keys of one spec, each role once, with the keys as the user wrote them."""

    values: dict[RoleKey, Any] = field(default_factory=dict)
    written: dict[RoleKey, str] = field(default_factory=dict)
    weights: dict[int, float] = field(default_factory=dict)

    def model(self, role: str, index: int = 1) -> Any:
        return self.values.get(RoleKey(role, index))

    def has(self, role: str, index: int = 1) -> bool:
        return RoleKey(role, index) in self.values

    def settings(self, role: str, index: int) -> dict[str, Any]:
        return {k.field: v for k, v in self.values.items() if k.field and (k.role, k.index) == (role, index)}

    def delta_indices(self) -> list[int]:
        return sorted({k.index for k in self.values if k.role in ("ft", "ref")})


def role_key(key: str, source: str) -> RoleKey | None:
    """The role a key names, or None if it is no role key; malformed indexes are errors."""
    match = _ROLE_KEY.match(key)
    if match is None:
        return None
    name, digits, field_name = match.groups()
    role = "base" if name == "model" else name
    if role == "base" and digits:
        raise EFTEvalError(f"{source}: {key!r}: the base model has no index (use base=... or base_<field>=...)")
    return RoleKey(role, _index(key, digits, "deltas are numbered ft, ft2, ft3", source), field_name)


def weight_index(key: str, source: str) -> int | None:
    """N of a `wN` key, or None if it is none."""
    match = _WEIGHT_KEY.match(key)
    return None if match is None else _index(key, match.group(1), "weights are numbered w1, w2, w3", source)


def _index(key: str, digits: str, numbering: str, source: str) -> int:
    # `ft01` once parsed as an index nobody used, `ft0` as a delta before the user's `ft`.
    if digits.startswith("0"):
        raise EFTEvalError(
            f"{source}: {key!r} is not a valid key: {numbering}, ... (no 0, no leading zeros)"
        )
    return int(digits) if digits else 1


def collect_role_keys(data: dict[str, Any], source: str) -> RoleKeys:
    """Move the role and weight keys out of `data` (other keys stay); `check_role_keys` checks them."""
    keys = RoleKeys()
    for key in list(data):
        if (index := weight_index(key, source)) is not None:
            _add_weight(keys, index, key, data.pop(key), source)
        elif (found := role_key(key, source)) is not None:
            if found in keys.values:
                raise EFTEvalError(
                    f"{source}: {keys.written[found]!r} and {key!r} both set {found.name}: give one of them"
                )
            keys.values[found] = data.pop(key)
            keys.written[found] = key
    return keys


def check_role_keys(keys: RoleKeys, source: str) -> None:
    """Deltas numbered without gaps, every setting for a component that is there."""
    _check_numbering(keys, source)
    _check_settings_have_models(keys, source)


def _add_weight(keys: RoleKeys, index: int, key: str, value: Any, source: str) -> None:
    if index in keys.weights:  # only reachable through a mapping, whose keys are distinct strings
        raise EFTEvalError(f"{source}: weight w{index} given twice")
    keys.weights[index] = float(parse_number(value, key, source))


def _check_numbering(keys: RoleKeys, source: str) -> None:
    """Deltas are numbered without gaps: `ft3` needs `ft2` (a gap would renumber the deltas the
    user wrote, so `w3` would weigh the second one)."""
    for ft in sorted((k for k in keys.values if k.role == "ft" and k.field is None), key=lambda k: k.index):
        previous = RoleKey("ft", ft.index - 1)
        if ft.index > 1 and previous not in keys.values:
            raise EFTEvalError(
                f"{source}: {keys.written[ft]!r} is given without {previous.name}: "
                "deltas are numbered ft, ft2, ft3, ... without gaps"
            )


def _check_settings_have_models(keys: RoleKeys, source: str) -> None:
    """A setting for a component that is not there would be dropped without a word. (`ref2_dtype`
    without `ref2` is fine: delta 2's reference is then `ref`'s model with that setting.)"""
    for found, written in keys.written.items():
        if found.field is None or found.model in keys.values:
            continue
        ft = RoleKey("ft", found.index)
        if found.role == "ref" and found.index > 1 and ft in keys.values:
            continue
        needed = ft if found.role == "ref" and found.index > 1 else found.model
        raise EFTEvalError(f"{source}: {written!r} is given without {needed.name}=MODEL")


__all__ = ["COMPONENT_FIELDS", "RoleKey", "RoleKeys", "check_role_keys", "collect_role_keys",
           "role_key", "weight_index"]
