"""Reading a pairwise judge's answer: reasoning, then a final verdict such as `Verdict: A` or `[[A>B]]`.

Real judges name both responses while reasoning ("Response A is shorter, but B ..."), so a bare
`A` or `B` in the text means nothing. The verdict is read only where the judge's `verdict_format`
puts it (its text around `{verdict}`, one of the declared `verdicts` or abstain tokens), and when
that pattern occurs more than once, the LAST occurrence wins: a judge that drafts "Verdict: A"
and then corrects itself to "Verdict: B" is read as B. Markdown (`**Verdict:** A`), quotes,
`Response A` / `Assistant A` and case are tolerated. The verdict's outcome for response A (1, 0.5,
0, or a grade between) is the judgment's score.

No verdict marker at all is not a tie and not a loss: it is unreadable, so the engine re-asks
(`--max-parse-retries`) and then records the judgment as failed, exactly as a pointwise answer
without a `Score:` line; an abstain token (`Verdict: none`) is an abstention. Either way the pair
has no outcome and is counted apart, never averaged in.
"""

from __future__ import annotations

import re
from typing import Literal

from eft_eval.judging._pairwise_spec import verdict_pattern
from eft_eval.judging._spec import JudgeSpec

_MARKDOWN = re.compile(r"[*`#]|^\s*>+", re.MULTILINE)


Read = tuple[Literal["scored", "abstained", "failed"], "str | None", "float | None", str, "str | None"]


def parse_verdict(raw: str | None, spec: JudgeSpec) -> Read:
    """(status, verdict, outcome for response A, reasoning, error) of one pairwise answer."""
    if not raw or not raw.strip():
        return "failed", None, None, "", "the answer is empty"
    text = _MARKDOWN.sub("", raw)
    labels = (*spec.verdicts, *spec.abstain_tokens)
    found = list(verdict_pattern(spec.verdict_format, labels).finditer(text))
    if not found:
        return "failed", None, None, _reason(text, spec), f"no final verdict in the form {describe_format(spec)!r}"
    last = found[-1]
    reason = _reason(text[: last.start()], spec)
    said = last.group("verdict").lower()
    if any(said == token.lower() for token in spec.abstain_tokens):
        return "abstained", None, None, reason, None
    verdict = next(label for label in spec.verdicts if label.lower() == said)
    return "scored", verdict, spec.verdicts[verdict], reason, None


def describe_format(spec: JudgeSpec) -> str:
    """`Verdict: <A, B or tie>`: what the re-ask and errors show."""
    labels = list(spec.verdicts)
    choices = ", ".join(labels[:-1]) + f" or {labels[-1]}"
    return spec.verdict_format.replace("{verdict}", f"<{choices}>")


def _reason(before_verdict: str, spec: JudgeSpec) -> str:
    label = re.search(rf"(?i)\b{re.escape(spec.reason_label)}\s*:", before_verdict)
    return (before_verdict[label.end():] if label else before_verdict).strip()
