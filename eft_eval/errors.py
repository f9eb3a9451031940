"""The one exception type users see for bad input: the CLI prints its message on one line."""

from typing import Any


class EFTEvalError(Exception):
    """Bad input or configuration. The message names the file, field or value at fault."""


def short_repr(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters: a quoted value in a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["EFTEvalError", "short_repr"]
