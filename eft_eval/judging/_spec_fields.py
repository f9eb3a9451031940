"""Checks of single judge YAML fields, for `_spec.load_judge_file`: each mistake one line naming the
field, and values YAML read as something other than they look (`1e308` as text, `yes` as true,
`123` as a number) said so."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.stats import aggregation_names, get_aggregation

Bad = Callable[[str, str], EFTEvalError]
"""`bad(field, why)`: the error naming the judge file and the field."""

MAX_SCORE = float(2**53)
"""Largest score in size: beyond it not every whole number is a float, and sums of squares of a
few scores could overflow. No judge scores that high; an answer that does is misread or broken."""

# `{word}` in a template: a placeholder, filled in only for `query` and `response`.
_BRACED_WORD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def yaml_typed(value: Any) -> str:
    """`, got 123 (YAML reads it as a int: quote it)` for a value YAML did not read as text."""
    if value is None or isinstance(value, str):
        return ""
    return f", got {value!r:.40} (YAML reads it as a {type(value).__name__}: put it in quotes)"


def check_templates(values: Mapping[str, Any], bad: Bad) -> None:
    """`{response}` in each prompt; no `{word}` that would be sent as written (a typo of `{query}`,
    or a placeholder of another tool such as `{instruction}`); none in the system prompt, which is
    sent as written."""
    for key in ("prompt", "prompt_with_query"):
        template = values[key]
        if template is None:
            continue
        if "{response}" not in template:
            raise bad(key, "must contain the placeholder {response}")
        unknown = next((m.group(0) for m in _BRACED_WORD.finditer(template) if m.group(1) not in ("query", "response")),
                       None)
        if unknown is not None:
            raise bad(key, f"has the placeholder {unknown}, which is never filled in: only {{query}} and {{response}} "
                      f"are (for braces the judge should see, put a space inside: {{ {unknown[1:-1]} }})")
    system = values["system_prompt"]
    found = _BRACED_WORD.search(system) if system is not None else None
    if found is not None:
        raise bad("system_prompt", f"has the placeholder {found.group(0)}, but the system prompt is sent as "
                  "written: put placeholders in prompt")


def check_abstain_tokens(tokens: list[str], bad: Bad) -> None:
    """An abstain token is compared with the first word after `Score:`, before any number is read:
    a token with a space never matches, and one that reads as a number would swallow that score."""
    for token in tokens:
        if len(token.split()) != 1:
            raise bad("abstain_tokens", f"{token!r} is not one word (tokens are compared with the first word "
                      "after the score label)")
        if re.match(r"[-+.]?[0-9]", token.strip()):
            raise bad("abstain_tokens", f"{token!r} reads as a score: answers scoring it would count as abstentions")


def build_aggregation(raw: Any, bad: Bad) -> tuple[str, dict[str, Any]]:
    """`mean` or `{name: proportion_at_least, threshold: 1}`: a registered aggregation, checked now."""
    if isinstance(raw, dict):
        params = {key: value for key, value in raw.items() if key != "name"}
        name = raw.get("name")
    else:
        name, params = raw, {}
    if not isinstance(name, str):
        raise bad("aggregation", f"must name one of {', '.join(aggregation_names())} (or be a mapping with a name)")
    try:
        get_aggregation(name, params)
    except ValueError as error:
        raise bad("aggregation", str(error)) from None
    return name, params


# Chat-completion parameters the engine sets itself or cannot read the answer with.
_ENGINE_PARAMETERS = {"model": "the judge model is --judge-model or judge_model",
                      "messages": "the messages are rendered from prompt"}


def check_sampling(sampling: dict[str, Any], bad: Bad) -> None:
    """Refuse parameters that would make every request fail (and be retried as if transient)."""
    for key, why in _ENGINE_PARAMETERS.items():
        if key in sampling:
            raise bad(f"sampling.{key}", f"cannot be set here: {why}")
    if sampling.get("stream") not in (None, False):
        raise bad("sampling.stream",
                  f"must be false or absent: the judge reads whole answers, got {sampling['stream']!r}")
    if sampling.get("n") not in (None, 1):
        raise bad("sampling.n", f"must be 1 or absent: one answer is read per request, got {sampling['n']!r}")
    for key, value in sampling.items():  # NaN would be sent as the non-JSON token NaN
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(f"sampling.{key}", f"must be a finite number, got {value}")
    for key in ("max_tokens", "max_completion_tokens"):  # the budget prices answers at this limit
        value = sampling.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise bad(f"sampling.{key}", f"must be a whole number of tokens >= 1, got {value!r:.40}")


def score_bound(value: Any, key: str, bad: Bad) -> float | None:
    """A score bound: null, or a number YAML read as one, finite and within `MAX_SCORE`.

    Text is refused, even when it looks like a number, because the file then says something other
    than it seems: YAML 1.1 reads `1e308` (no dot, no sign in the exponent) as the text "1e308".
    """
    if value is None:
        return None
    if isinstance(value, str) and _looks_numeric(value):
        raise bad(key, f"must be a number or null, got the text {value!r:.40}: YAML 1.1 reads a number with "
                  "an exponent as a number only when it has a dot and a signed exponent (1.0e+2, not 1e2)")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(key, "must be a number or null" + yaml_typed(value))
    if not math.isfinite(value):  # .nan would make every score out of range
        raise bad(key, f"must be a finite number or null (no bound), got {value}")
    if abs(value) > MAX_SCORE:
        raise bad(key, f"is {value:g}, beyond any judge's scale ({MAX_SCORE:.0f}): for no bound, write null")
    return float(value)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
