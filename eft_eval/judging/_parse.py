"""Reading reasoning-then-score answers (`Reason: ...` then `Score: N`).

The score is taken from the *last* score line, because judges often mention "score" while
reasoning. Markdown (`**Score:** 3`, `` `0` ``) and a value on the next line are tolerated; an
abstain token such as `None` is an abstention. Neither a failure nor an abstention is ever a 0.

A score line holds one number and nothing that changes its meaning. The number is written in
ASCII digits, optionally signed, optionally with a decimal part (`3`, `-1`, `37.5`); after it
the line may hold only, in this order:

- `%` or `percent`, on a judge scored from 0 to 100 (a percentage judge) and nowhere else;
- one word saying what is counted (`2 errors`);
- a comment in parentheses (`1 (one wrong date)`);
- closing punctuation and quotes (`3.`, `"3"`, `(3)`).

Neither the word nor the comment may hold a digit or a word that joins the number to another
(`or`, `to`, `out`, `of`, ...). Anything else is unreadable, because reading it means guessing:
`7/10` and `7 out of ten` (a different scale), `85-90` and `2 or 3` (a range, a choice),
`1,000` (a thousands separator or a decimal comma), `1e5` and `0x10` (notations judges are not
asked for), `٧` or `½` (not ASCII digits; Python's `float` would read them). A score that is
unreadable, out of the judge's range, or beyond `MAX_SCORE` in size is a parse failure: the
engine re-asks with the reason, then records the judgment as failed.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Literal

from eft_eval.judging._spec import JudgeSpec
from eft_eval.judging._spec_fields import MAX_SCORE

Status = Literal["scored", "abstained", "failed"]

_MARKDOWN = re.compile(r"[*`#]|^\s*>+", re.MULTILINE)
# ASCII digits only: `\d` and `float` also take other scripts' digits.
_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")
# What may follow the number (see the module docstring); `\Z`: nothing else.
_TAIL = re.compile(
    r"(?P<percent>\s*%|\s+percent\b)?"
    r"(?P<word>\s+[^\W\d_]+)?"
    r"(?P<comment>\s*\([^()]*\))?"
    r"[\s.!,;:\"')\]]*\Z"
)
# Words that make the number one end of a range, a ratio or a choice.
_JOINING_WORDS = frozenset({"or", "to", "out", "of", "over", "and", "per", "from", "between", "through",
                            "vs", "versus", "plus", "minus", "times", "x"})


@dataclass(frozen=True)
class ParsedAnswer:
    """A judge answer, read. `score` is set only when `status == "scored"`."""

    status: Status
    score: float | None
    reason: str
    error: str | None = None
    """Why the answer could not be read (failed only); shown to the judge when re-asking."""
    verdict: str | None = None
    """A pairwise judge's verdict (one of its `verdicts`), whose outcome for response A is `score`."""


def parse_answer(raw: str | None, spec: JudgeSpec) -> ParsedAnswer:
    """Read one raw judge answer with the judge's custom parser if it has one, else the built-in."""
    custom = spec.custom_parser()
    if custom is None and spec.pairwise:
        from eft_eval.judging._verdict import parse_verdict

        status, verdict, outcome, reason, error = parse_verdict(raw, spec)
        return ParsedAnswer(status, outcome, reason, error, verdict)
    if custom is None:
        return parse_score(raw, spec)
    try:
        result = custom(raw or "", spec)
    except ValueError as error:
        return ParsedAnswer("failed", None, "", f"custom parser: {error}")
    if isinstance(result, ParsedAnswer):
        if result.status == "scored":
            return _custom_score(result.score, result.reason, spec)
        return result
    if result is None:
        return ParsedAnswer("abstained", None, "")
    return _custom_score(result, "", spec)


def _custom_score(result: object, reason: str, spec: JudgeSpec) -> ParsedAnswer:
    """A custom parser's score: a real number (not a bool, not text), in range; else a failure."""
    if isinstance(result, bool) or not isinstance(result, numbers.Real):
        return ParsedAnswer("failed", None, reason, f"custom parser returned {result!r:.60}, not a number")
    try:
        score = float(result)
    except OverflowError:  # an int too large for a float
        return ParsedAnswer("failed", None, reason, "custom parser returned a number too large to be a score")
    return _check_range(score + 0.0, reason, spec)


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
    unwrapped = value.lstrip("\"'([ ")
    number = _NUMBER.match(unwrapped)
    if number is None:
        shown = value[:40] or "nothing"
        return ParsedAnswer("failed", None, reason, f"'{spec.score_label}:' is followed by {shown!r}, not a number "
                            "(write it in the digits 0-9)")
    problem = _tail_problem(unwrapped[number.end():], spec)
    if problem is not None:
        return ParsedAnswer("failed", None, reason, f"'{spec.score_label}:' is followed by {value[:60]!r}: {problem}")
    return _check_range(float(number.group()) + 0.0, reason, spec)  # + 0.0: `-0` is 0


def _tail_problem(tail: str, spec: JudgeSpec) -> str | None:
    """Why the text after the score's number makes the line unreadable; None when it does not."""
    if any(character.isnumeric() for character in tail):
        return "more than one number (give one number, e.g. 3 or 37.5)"
    parts = _TAIL.match(tail)
    if parts is None:
        return "not one number alone (give one number, then nothing but an optional word or comment)"
    if parts.group("percent") and not _is_percentage(spec):
        return f"a percentage, but scores are {describe_range(spec)}"
    words = re.findall(r"[^\W\d_]+", (parts.group("word") or "") + " " + (parts.group("comment") or ""))
    joining = next((word for word in words if word.lower() in _JOINING_WORDS), None)
    if joining is not None:
        return f"{joining!r} makes it a range, ratio or choice (give one number)"
    return None


def _is_percentage(spec: JudgeSpec) -> bool:
    return spec.score.min == 0 and spec.score.max == 100


def _check_range(score: float, reason: str, spec: JudgeSpec) -> ParsedAnswer:
    bounds = spec.score
    if math.isnan(score):
        return ParsedAnswer("failed", None, reason, "score nan is not a number")
    if abs(score) > MAX_SCORE:  # infinity included
        return ParsedAnswer("failed", None, reason, f"score {score:g} is outside {describe_range(spec)} "
                            f"(and beyond any judge's scale, {MAX_SCORE:.0f})")
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
