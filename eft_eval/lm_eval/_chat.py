"""Chat-style lm-eval tasks (`--apply_chat_template`) with per-component prompt formats.

lm-eval renders a conversation to one string with the model's `apply_chat_template` and passes
that string around as the request's context. An EFT model has no single chat format: the
fine-tuned model wants its chat template, a pre-trained model the plain `Human:/Assistant:`
dialogue. So the backend's `apply_chat_template` returns a *marker*: the messages serialized as
JSON behind a fixed prefix. The backend decodes the marker back into the conversation and lets
each component render it in its own format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from eft_eval.errors import EFTEvalError
from eft_eval.models import Component, Message

MARKER = "<|eft-eval:messages|>"
"""Prefix of a serialized conversation; never produced by a real prompt."""


@dataclass(frozen=True)
class Conversation:
    """The messages lm-eval built, and whether the model answers in a new assistant turn."""

    messages: tuple[Message, ...]
    add_generation_prompt: bool = True
    """False: the last message is the start of the assistant's answer (lm-eval's `gen_prefix`),
    which the model continues."""

    def to_context(self) -> str:
        payload = {"messages": list(self.messages), "add_generation_prompt": self.add_generation_prompt}
        return MARKER + json.dumps(payload, ensure_ascii=False)

    @classmethod
    def from_context(cls, context: str) -> Conversation | None:
        """The conversation in a marker context, or None for an ordinary (raw) context."""
        if not context.startswith(MARKER):
            return None
        try:
            payload = json.loads(context[len(MARKER):])
            messages = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in payload["messages"])
            return cls(messages=messages, add_generation_prompt=bool(payload["add_generation_prompt"]))
        except (ValueError, KeyError, TypeError) as error:
            raise EFTEvalError(f"malformed chat context {context[:80]!r}...: {error}") from None

    def render(self, component: Component) -> str:
        """The prompt text `component` sees, ending where the model's output starts."""
        messages: Sequence[Message] = self.messages
        prefill = ""
        if not self.add_generation_prompt and messages and messages[-1]["role"] == "assistant":
            messages, prefill = messages[:-1], messages[-1]["content"]
        text = component.render(list(messages))
        if prefill:
            # Chat templates open the assistant turn with their own separator; the plain dialogue
            # template puts a space after "Assistant:" (as `render_plain` does for answers).
            text += prefill if component.uses_chat_template else " " + prefill
        return text

    def encode(self, component: Component) -> list[int]:
        """Token ids of `render(component)`; chat templates carry their own BOS."""
        text = self.render(component)
        return list(component.tokenizer(text, add_special_tokens=not component.uses_chat_template)["input_ids"])


def conversation_marker(messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """What the backend's `apply_chat_template` returns for lm-eval to carry as the context."""
    cleaned = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in messages)
    return Conversation(cleaned, add_generation_prompt).to_context()


class MessageMarkerChat:
    """lm-eval's chat hooks for LMs that carry messages as a marker (the `eft` backend's convention).

    Mixed in before lm-eval's `LM` by the wrappers around an EFT model (the resumable run's LM, the
    sweep's request collector): their chat contexts must be the very strings the backend would make.
    """

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """A marker holding the messages: each component renders them in its own format later."""
        return conversation_marker(chat_history, add_generation_prompt)

    @property
    def tokenizer_name(self) -> str:
        # Chat contexts are serialized messages, the same for every EFT model.
        return "eft-eval-messages"

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return None


__all__ = ["MARKER", "Conversation", "MessageMarkerChat", "conversation_marker"]
