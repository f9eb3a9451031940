"""Response bodies in the OpenAI API's shapes: completions, stream chunks, log-probs, usage.

Finish reasons map to OpenAI's: EOS and stop strings are `stop`, `max_tokens` is `length`.
Log-probs are the EFT model's (the composed distribution, before temperature and top-p), the same
numbers `EFTModel.score` gives for the generated tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eft_eval.models import FINISH_REASONS
from eft_eval.serve._engine import TokenEvent


class Vocabulary(Protocol):
    """How a token id is shown: its text and its own bytes (the engine is one)."""

    def token_text(self, token_id: int) -> str: ...

    def token_bytes(self, token_id: int) -> list[int]: ...


@dataclass
class ChoiceResult:
    """What one choice produced: its final text, tokens and (if asked) their log-probs."""

    text: str
    finish_reason: str
    completion_tokens: int
    tokens: list[TokenEvent] = field(default_factory=list)


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _token_entry(vocab: Vocabulary, token: int, logprob: float) -> dict[str, Any]:
    return {"token": vocab.token_text(token), "logprob": logprob, "bytes": vocab.token_bytes(token)}


def chat_logprobs(events: Sequence[TokenEvent], vocab: Vocabulary) -> dict[str, Any]:
    """`choices[i].logprobs` of a chat completion: `{"content": [{token, logprob, bytes, top_logprobs}]}`."""
    content = []
    for event in events:
        entry = _token_entry(vocab, event.token, event.logprob)
        entry["top_logprobs"] = [_token_entry(vocab, t, lp) for t, lp in event.top]
        content.append(entry)
    return {"content": content}


def completion_logprobs(events: Sequence[TokenEvent], vocab: Vocabulary, offset: int = 0) -> dict[str, Any]:
    """`choices[i].logprobs` of a text completion (the legacy shape: parallel lists)."""
    tokens, text_offset, position = [], [], offset
    for event in events:
        text = vocab.token_text(event.token)
        tokens.append(text)
        text_offset.append(position)
        position += len(text)
    return {
        "tokens": tokens,
        "token_logprobs": [event.logprob for event in events],
        "top_logprobs": [{vocab.token_text(t): lp for t, lp in event.top} for event in events],
        "text_offset": text_offset,
    }


def completion(
    chat: bool, request_id: str, created: int, model: str, choices: Sequence[ChoiceResult], prompt_tokens: int,
    logprobs: bool, vocab: Vocabulary,
) -> dict[str, Any]:
    """A whole (not streamed) answer: a `chat.completion` of messages or a `text_completion` of texts."""

    def content(choice: ChoiceResult) -> dict[str, Any]:
        if chat:
            return {"message": {"role": "assistant", "content": choice.text},
                    "logprobs": chat_logprobs(choice.tokens, vocab) if logprobs else None}
        return {"text": choice.text, "logprobs": completion_logprobs(choice.tokens, vocab) if logprobs else None}

    return {
        "id": request_id,
        "object": "chat.completion" if chat else "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": index, **content(choice), "finish_reason": FINISH_REASONS[choice.finish_reason]}
                    for index, choice in enumerate(choices)],
        "usage": usage(prompt_tokens, sum(c.completion_tokens for c in choices)),
    }


def chunk(
    chat: bool, request_id: str, created: int, model: str, index: int, content: Any,
    logprobs: dict[str, Any] | None = None, finish_reason: str | None = None,
) -> dict[str, Any]:
    """One streamed piece of a choice: its `delta` (chat) or its `text`."""
    return {
        "id": request_id, "object": "chat.completion.chunk" if chat else "text_completion", "created": created,
        "model": model,
        "choices": [{"index": index, "delta" if chat else "text": content, "logprobs": logprobs,
                     "finish_reason": FINISH_REASONS.get(finish_reason or "", finish_reason)}],
    }


def usage_chunk(request_id: str, created: int, model: str, object_name: str, usage_: dict[str, int]) -> dict[str, Any]:
    """The last chunk of a stream with `stream_options.include_usage`: no choices, the usage."""
    return {"id": request_id, "object": object_name, "created": created, "model": model, "choices": [],
            "usage": usage_}


class TextStreamer:
    """Turns a growing list of token ids into text deltas that add up to the final text.

    Text is held back while it ends in an incomplete UTF-8 character or in what could be the start
    of a stop string (the decoder cuts a stop string from the answer; it must never be streamed).
    """

    def __init__(self, detokenize: Callable[[list[int]], str], stop: Sequence[str]) -> None:
        self.detokenize = detokenize
        self.stop = list(stop)
        self.token_ids: list[int] = []
        self.sent = ""

    def push(self, token: int) -> str:
        self.token_ids.append(token)
        text = self.detokenize(self.token_ids)
        safe = len(text.rstrip("\ufffd"))
        for stop in self.stop:
            if stop in text:  # this token completed a stop string: the decoder ends the row here
                safe = min(safe, text.index(stop))
            for length in range(min(len(stop), len(text)), 0, -1):
                if text.endswith(stop[:length]):
                    safe = min(safe, len(text) - length)
                    break
        return self._send(text[:safe])

    def finish(self, final_text: str) -> str:
        return self._send(final_text)

    def _send(self, text: str) -> str:
        if len(text) <= len(self.sent) or not text.startswith(self.sent):
            return ""
        delta, self.sent = text[len(self.sent):], text
        return delta
