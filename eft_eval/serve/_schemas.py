"""Request bodies of the OpenAI API endpoints `eft-eval serve` answers, as pydantic models.

Only what the EFT sampler can honour is a field. Any other parameter is accepted only while it asks
for nothing (`presence_penalty: 0`, `logit_bias: {}`, `tools: null`, ...), because clients send
neutral defaults; one that asks for something the server cannot do is a 400 naming it, never
silently ignored.

Values are validated strictly (pydantic's strict mode): in lax mode `"temperature": "0.5"` was a
number, `"max_tokens": true` meant 1 token, `"n": true` one choice and `"stream": "false"` a
boolean. A client that sends the wrong JSON type gets a 400 naming the field instead.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class APIError(Exception):
    """An OpenAI-style error: the HTTP status and the `error` object's fields."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error",
        param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}
        """Extra response headers (`Retry-After` of a 429)."""

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _asks_for_nothing(value: Any) -> bool:
    """Whether a value of an unsupported parameter is a neutral default (OpenAI's own defaults)."""
    if value is None or value is False or value in ("", "none", "auto", [], {}, {"type": "text"}):
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


MAX_STOP_STRINGS = 32
"""Each stop string is searched for after every token of a row, on the one decoder thread that
every client shares; a body of a hundred thousand stop strings would stall them all."""


class TextPart(BaseModel):
    """A `{"type": "text", "text": ...}` part of a message's content (images are unsupported)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # `name` and other annotations do not change the prompt
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def as_message(self) -> dict[str, str]:
        """The `{role, content}` dict every component renders (`developer` is OpenAI's new `system`)."""
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    include_usage: bool = False


class _Common(BaseModel):
    """Parameters shared by chat and text completions."""

    model_config = ConfigDict(extra="allow", strict=True)
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    """Extension (as vLLM's): keep the k most probable tokens; 0 keeps all."""
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    ignore_eos: bool = False
    """Extension (as vLLM's): generate until `max_tokens` or a stop string; benchmarks use it."""

    @field_validator("stop")
    @classmethod
    def _stop_strings(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if any(not s for s in stops):
            raise ValueError("stop strings must not be empty")
        if len(stops) > MAX_STOP_STRINGS:
            raise ValueError(f"{len(stops)} stop strings; at most {MAX_STOP_STRINGS} are allowed")
        return stops

    @model_validator(mode="after")
    def _nothing_unsupported(self) -> _Common:
        for name, value in (self.model_extra or {}).items():
            if not _asks_for_nothing(value):
                raise APIError(400, f"unsupported parameter {name!r} (= {value!r}): eft-eval serve supports "
                               f"{', '.join(self.supported())}", param=name, code="unsupported_parameter")
        return self

    @classmethod
    def supported(cls) -> list[str]:
        return list(cls.model_fields)

    @property
    def stop_strings(self) -> list[str]:
        return list(self.stop or [])


class ChatCompletionRequest(_Common):
    """`POST /v1/chat/completions`."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @model_validator(mode="after")
    def _top_logprobs_needs_logprobs(self) -> ChatCompletionRequest:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def logprob_count(self) -> int | None:
        """None: no log-probs; k: the chosen token's and the top k."""
        return (self.top_logprobs or 0) if self.logprobs else None


class CompletionRequest(_Common):
    """`POST /v1/completions`: the prompt is continued verbatim (no chat rendering)."""

    prompt: str | list[str]
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: Literal[False] = False
    best_of: int | None = None

    @model_validator(mode="after")
    def _best_of_is_n(self) -> CompletionRequest:
        if self.best_of is not None and self.best_of != self.n:
            raise ValueError("best_of other than n is not supported")
        return self

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def token_limit(self) -> int | None:
        return self.max_tokens

    @property
    def logprob_count(self) -> int | None:
        return self.logprobs


def validation_message(error: Any) -> tuple[str, str | None]:
    """One line from a pydantic `ValidationError`: the first problem and the field it is about."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first.get("loc", ()) if not str(part).startswith("function-"))
    # Union members add their type name to the location (`stop.str`); the field is what users wrote.
    location = ".".join(p for p in location.split(".") if p not in ("str", "list[str]", "list[TextPart]"))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if str(first.get("type", "")).endswith("_type") and "input" in first:  # strict mode: say what came instead
        message += f", got {_json_text(first['input'])}"
    return (f"{location}: {message}" if location else message), (location or None)


def _json_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
