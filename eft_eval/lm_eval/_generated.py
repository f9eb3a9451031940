"""A generated response as lm-eval sees it (a string) that also knows its length and why it ended.

lm-eval's `generate_until` returns strings, and its cache hook and filters pass strings on. A
`GeneratedText` is a `str`, so it goes wherever lm-eval takes an answer (and pickles into lm-eval's
own request cache), while the run folder reads the model's token count and finish reason from it.
"""

from __future__ import annotations

from typing import Any


class GeneratedText(str):
    """`str(self)` is the response; `response_tokens` and `finish_reason` are `EFTModel.generate`'s:
    the tokens generated and `Generation.recorded_finish_reason` (`stop` at EOS, `length` at the
    length limit, or the stop string that ended it).

    Built from a text alone as `str` is (lm-eval casts a task's target to its answer's type), it
    has neither.
    """

    response_tokens: int | None
    finish_reason: str | None

    def __new__(cls, text: str = "", response_tokens: int | None = None,
                finish_reason: str | None = None) -> GeneratedText:
        self = super().__new__(cls, text)
        self.response_tokens, self.finish_reason = response_tokens, finish_reason
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (GeneratedText, (str(self), self.response_tokens, self.finish_reason))

    @classmethod
    def of(cls, text: str, generation: Any) -> GeneratedText:
        """`text` (the response after lm-eval's stop-string post-processing) with `generation`'s length and
        finish reason (an `eft_eval.models.Generation`)."""
        return cls(text, len(generation.token_ids), generation.recorded_finish_reason)

    def length_fields(self) -> dict[str, Any]:
        """`{"response_tokens": N, "finish_reason": R}`, as generations.jsonl and samples.jsonl hold them
        ({} when not known)."""
        if self.response_tokens is None or self.finish_reason is None:
            return {}
        return {"response_tokens": self.response_tokens, "finish_reason": self.finish_reason}


def length_fields(text: Any) -> dict[str, Any]:
    """A response's length fields when it carries them (a `GeneratedText`), else none: another lm-eval
    model's answers are plain strings."""
    return text.length_fields() if isinstance(text, GeneratedText) else {}


__all__ = ["GeneratedText", "length_fields"]
