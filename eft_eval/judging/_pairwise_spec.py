"""The fields of a pairwise judge YAML (`kind: pairwise`): its verdicts, where the final verdict
stands, and how the two orders of one pair combine. Checked here, one line per mistake.

A pairwise judge sees one query and two responses, `{response_a}` and `{response_b}`, and answers
with its reasoning, then a verdict. Each verdict maps to an *outcome for response A*: 1 (A wins),
0.5 (a tie), 0 (B wins), or a grade between (Arena-Hard's `A>B` could be 0.75). The engine stores
that outcome as the judgment's `score`, so caching, retries, batches, budgets and judge samples
work for pairwise judgments exactly as for scores.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from eft_eval.errors import EFTEvalError

Bad = Callable[[str, str], EFTEvalError]

KINDS = ("pointwise", "pairwise")
DEFAULT_VERDICTS: dict[str, float] = {"A": 1.0, "B": 0.0, "tie": 0.5}
DEFAULT_VERDICT_FORMAT = "Verdict: {verdict}"
DEFAULT_ORDER_RULE = "tie"
PAIRWISE_FIELDS = ("verdicts", "verdict_format", "order_rule")
"""Optional fields of a pairwise judge only."""

_PLACEHOLDERS = ("query", "response_a", "response_b")
_BRACED_WORD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_pairwise_template(template: Any, bad: Bad) -> None:
    """`{response_a}` and `{response_b}` in the prompt; no other placeholder than those and `{query}`."""
    if not isinstance(template, str):
        return
    for needed in ("{response_a}", "{response_b}"):
        if needed not in template:
            raise bad("prompt", f"must contain the placeholder {needed} (a pairwise judge sees two responses)")
    unknown = next((m.group(0) for m in _BRACED_WORD.finditer(template) if m.group(1) not in _PLACEHOLDERS), None)
    if unknown is not None:
        raise bad("prompt", f"has the placeholder {unknown}, which is never filled in: a pairwise prompt has "
                  f"{{query}}, {{response_a}} and {{response_b}} (for braces the judge should see, put a space "
                  f"inside: {{ {unknown[1:-1]} }})")


def build_verdicts(raw: Any, bad: Bad) -> dict[str, float]:
    """`{A: 1, B: 0, tie: 0.5}`: each verdict the judge may give, and the outcome for response A."""
    if raw is None:
        return dict(DEFAULT_VERDICTS)
    if not isinstance(raw, dict) or len(raw) < 2:
        raise bad("verdicts", "must map at least two verdicts to the outcome for response A, e.g. "
                  "{A: 1, B: 0, tie: 0.5}")
    verdicts: dict[str, float] = {}
    seen: dict[str, str] = {}
    for label, outcome in raw.items():
        if not isinstance(label, str) or not label.strip() or label != label.strip():
            raise bad("verdicts", f"has the verdict {label!r}: verdicts are non-empty text without surrounding "
                      "spaces (quote labels YAML reads otherwise, e.g. 'yes')")
        if isinstance(outcome, bool) or not isinstance(outcome, (int, float)) or not 0 <= outcome <= 1:
            raise bad(f"verdicts.{label}", f"must be the outcome for response A, a number from 0 (B wins) to 1 "
                      f"(A wins), got {outcome!r:.40}")
        if label.lower() in seen:  # verdicts are read case-insensitively
            raise bad("verdicts", f"has {seen[label.lower()]!r} and {label!r}, which differ only in case")
        seen[label.lower()] = label
        verdicts[label] = float(outcome)
    return verdicts


def build_verdict_format(raw: Any, bad: Bad) -> str:
    """Where the final verdict stands: a line such as `Verdict: {verdict}` or `[[{verdict}]]`."""
    if raw is None:
        return DEFAULT_VERDICT_FORMAT
    if not isinstance(raw, str) or raw.count("{verdict}") != 1:
        raise bad("verdict_format", "must be text holding {verdict} once, e.g. 'Verdict: {verdict}' or "
                  f"'[[{{verdict}}]]', got {raw!r:.40}")
    if not raw.replace("{verdict}", "").strip():
        raise bad("verdict_format", "must have text around {verdict} (e.g. 'Verdict: {verdict}'): a bare verdict "
                  "would be found in the reasoning")
    return raw


def build_order_rule(raw: Any, bad: Bad) -> str:
    """How the two orders of one pair combine when they disagree (`eft_eval.stats.combine_orders`)."""
    if raw is None or raw == DEFAULT_ORDER_RULE:  # the default needs no check (nor numpy, to load a judge)
        return DEFAULT_ORDER_RULE
    from eft_eval.stats import combine_orders

    if not isinstance(raw, str):
        raise bad("order_rule", f"must name a rule of combining the two orders, got {raw!r:.40}")
    try:
        combine_orders(1.0, 0.0, rule=raw)
    except ValueError as error:
        raise bad("order_rule", str(error)) from None
    return raw


def verdict_pattern(verdict_format: str, labels: Mapping[str, Any] | tuple[str, ...]) -> re.Pattern[str]:
    """The regular expression of a final verdict: the format's text around one of `labels`.

    Spaces in the format match any run of spaces (or none), case is ignored, a verdict may be quoted
    or named `Response A` / `Assistant A`, and it must not run on into a word (`A` in `Answer`).
    The longest labels come first, so `A>>B` is not read as `A>B`.
    """
    before, after = verdict_format.split("{verdict}")
    ordered = sorted(labels, key=len, reverse=True)
    choice = "|".join(re.escape(label) for label in ordered)
    return re.compile(
        _spaced(before) + r"\s*[\"'(]?\s*(?:(?:response|assistant|model|output)\s+)?"
        + rf"(?P<verdict>{choice})(?![\w<>=])\s*[\"')]?" + _spaced(after),
        re.IGNORECASE,
    )


def _spaced(text: str) -> str:
    return r"\s*".join(re.escape(part) for part in text.split()) if text.strip() else ""
