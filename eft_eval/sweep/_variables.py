"""`--set NAME=VALUE`: a study variable's new value, typed by the study rather than by YAML.

Read as YAML, a system prompt `Answer. Note: be brief` became a mapping, `no` became False, `123`
an int and `# comment` nothing at all, each silently. A value is therefore the text as typed,
except:

- `null` unsets the variable (the README's `--set helpful_prompt=null`);
- where the study file's default for the variable is a number, the text must be a number (parsed
  by `parse_number`: `0.5`, `1e-3`; never nan or inf), and where it is true/false, a boolean
  (`parse_bool`);
- text that is a whole YAML list or mapping (`[a, b]`, `{k: v}`) is refused: a variable holds one
  value, and whether the brackets were meant literally cannot be told.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import parse_bool, parse_number

UNSET = "null"
"""The one word `--set` reads as "no value" (a system prompt of null is no system prompt)."""


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """`--set NAME=VALUE` items as name -> the text typed; a name set twice is an error."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise EFTEvalError(f"--set {item!r}: expected NAME=VALUE")
        if name in values:
            raise EFTEvalError(f"--set {name} is given twice ({values[name]!r} and {raw!r}): give it once")
        values[name] = raw
    return values


def apply_assignments(variables: dict[str, Any], assignments: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The study's variables with `--set` values in place, each typed as the study declares it."""
    result = dict(variables)
    for name, value in assignments.items():
        if name not in variables:
            raise EFTEvalError(f"{path}: variables.{name} is not a variable of this study (--set; known: "
                               f"{', '.join(variables) or 'none'})")
        result[name] = typed_value(name, value, variables[name], path)
    return result


def typed_value(name: str, value: Any, default: Any, path: Path) -> Any:
    """`value` for variable `name` whose study default is `default`.

    Text is typed as described in the module docstring; a value that is not text (a library
    caller's number) is kept, unless it is a list or mapping.
    """
    where = f"--set {name}"
    if not isinstance(value, str):
        if isinstance(value, (Mapping, list, tuple, set)):
            raise EFTEvalError(f"{path}: {where}={value!r}: a variable holds one value, not a "
                               f"{type(value).__name__}")
        return value
    if value.strip() == UNSET:
        return None
    if isinstance(default, bool):
        return parse_bool(value, name, f"{path}: --set (the study's default is {default})")
    if isinstance(default, (int, float)):
        return _number(name, value, default, path)
    _refuse_structure(name, value, path)
    return value


def _number(name: str, value: str, default: float, path: Path) -> int | float:
    number = parse_number(value, name, f"{path}: --set (the study's default is {default!r}, a number)")
    # `5` stays an int: a whole-number variable may be a run setting such as `limit`.
    if isinstance(number, float) and number.is_integer() and _looks_whole(value):
        return int(number)
    return number


def _looks_whole(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


def _refuse_structure(name: str, value: str, path: Path) -> None:
    """Refuse text that YAML would read as a whole list or mapping in flow style (`[a, b]`, `{k: v}`)."""
    stripped = value.strip()
    if not stripped.startswith(("[", "{")):
        return  # `Answer. Note: be brief` is prose, not a mapping the user could have meant
    try:
        parsed = yaml.safe_load(stripped)
    except yaml.YAMLError:
        return  # `[INST] ...` is not YAML at all: text
    if isinstance(parsed, (dict, list)):
        raise EFTEvalError(f"{path}: --set {name}={value!r} would be a "
                           f"{'list' if isinstance(parsed, list) else 'mapping'}"
                           "; a variable holds one value (text, a number or null)")


__all__ = ["UNSET", "apply_assignments", "parse_assignments", "typed_value"]
