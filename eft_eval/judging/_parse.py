"""Reading reasoning-then-score answers (`Reason: ...` then `Score: N`).

The score is taken from the *last* score line, because judges often mention "score" while
reasoning. Markdown (`**Score:** 3`), `%`, trailing punctuation (`Score: 3.`) and a value on the
next line are tolerated; a missing, malformed or out-of-range score is a parse failure (the engine
re-asks), an abstain token such as `None` is an abstention. Neither is ever turned into a 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from eft_eval.judging._spec import JudgeSpec

Status = Literal["scored", "abstained", "failed"]

_MARKDOWN = re.compile(r"[*`#]|^\s*>+", re.MULTILINE)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class ParsedAnswer:
    """A judge answer, read. `score` is set only when `status == "scored"`."""

    status: Status
    score: float | None
    reason: str
    error: str | None = None
    """Why the answer could not be read (failed only); shown to the judge when re-asking."""


def parse_answer(raw: str | None, spec: JudgeSpec) -> ParsedAnswer:
    """Read one raw judge answer with the judge's custom parser if it has one, else the built-in."""
    custom = spec.custom_parser()
    if custom is None:
        return parse_score(raw, spec)
    try:
        result = custom(raw or "", spec)
    except ValueError as error:
        return ParsedAnswer("failed", None, "", f"custom parser: {error}")
    if isinstance(result, ParsedAnswer):
        if result.status == "scored" and result.score is not None:
            return _check_range(result.score, result.reason, spec)
        return result
    if result is None:
        return ParsedAnswer("abstained", None, "")
    return _check_range(float(result), "", spec)


def parse_score(raw: str | None, spec: JudgeSpec) -> ParsedAnswer:
    """The built-in parser: reasoning text and the last score."""
    if not raw or not raw.strip():
        return ParsedAnswer("failed", None, "", "the answer is empty")
    text = _MARKDOWN.sub("", raw)
    label = re.compile(rf"(?i)\b{re.escape(spec.score_label)}\s*[:=]")
    matches = list(label.finditer(text))
    if not matches:
        return ParsedAnswer("failed", None, _reason(text, spec), f"no '{spec.score_label}:' line")
    last = matches[-1]
    reason = _reason(text[: last.start()], spec)
    rest = text[last.end():].strip().splitlines()
    value = rest[0].strip() if rest else ""

    first_word = re.sub(r"^[\s\"'(\[]+|[\s\"'.,;:!)\]]+$", "", value.split()[0]) if value else ""
    if any(first_word.lower() == token.lower() for token in spec.abstain_tokens):
        return ParsedAnswer("abstained", None, reason)
    number = _NUMBER.match(value.lstrip("\"'([ "))
    if number is None:
        shown = value[:40] or "nothing"
        return ParsedAnswer("failed", None, reason, f"'{spec.score_label}:' is followed by {shown!r}, not a number")
    return _check_range(float(number.group()), reason, spec)


def _check_range(score: float, reason: str, spec: JudgeSpec) -> ParsedAnswer:
    bounds = spec.score
    if not math.isfinite(score):
        return ParsedAnswer("failed", None, reason, f"score {score} is not a finite number")
    if bounds.kind == "integer" and score != int(score):
        return ParsedAnswer("failed", None, reason, f"score {score:g} is not a whole number")
    if (bounds.min is not None and score < bounds.min) or (bounds.max is not None and score > bounds.max):
        return ParsedAnswer("failed", None, reason, f"score {score:g} is outside {describe_range(spec)}")
    return ParsedAnswer("scored", score, reason)


def describe_range(spec: JudgeSpec) -> str:
    """Human wording of the valid scores, e.g. "0 to 100" or "a whole number >= 0"."""
    low, high = spec.score.min, spec.score.max
    kind = "a whole number" if spec.score.kind == "integer" else "a number"
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    if low is not None:
        return f"{kind} >= {low:g}"
    if high is not None:
        return f"{kind} <= {high:g}"
    return kind


def _reason(before_score: str, spec: JudgeSpec) -> str:
    """The reasoning: what precedes the score, after the `Reason:` label when there is one."""
    label = re.search(rf"(?i)\b{re.escape(spec.reason_label)}\s*:", before_score)
    text = before_score[label.end():] if label else before_score
    return text.strip()
