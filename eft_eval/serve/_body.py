"""A request body's JSON, refused where Python's parser is more lenient than JSON and UTF-8.

Python's `json` reads `NaN`, `Infinity` and `-Infinity` (not JSON), and `"\\ud800"` escapes into
strings no encoder can write (a lone UTF-16 surrogate): the tokenizer then failed with
`TextEncodeInput must be Union[...]`. Both are refused here with a 400 naming the field the user
wrote (`messages[0].content`, `top_p`), before any model sees the request.
"""

from __future__ import annotations

import json
from typing import Any

from eft_eval.serve._schemas import APIError


class _NonFinite:
    """What `NaN` / `Infinity` parse to here, so that the walk can name where they were."""

    def __init__(self, text: str) -> None:
        self.text = text


def parse_body(raw: bytes) -> Any:
    """The JSON value of `raw`, with `NaN`/`Infinity` kept as markers for `check_values`."""
    return json.loads(raw, parse_constant=_NonFinite)


def check_values(value: Any, path: str = "") -> None:
    """Raise a 400 naming the first string that is not valid Unicode or number that is not finite."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path or "body", what="a key")
            check_values(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_values(item, f"{path}[{index}]")
    elif isinstance(value, str):
        _check_text(value, path or "body", what="the text")
    elif isinstance(value, _NonFinite):
        raise APIError(400, f"{path}: {value.text} is not a JSON number; send a finite number",
                       param=path or None, code="invalid_value")


def _check_text(text: str, path: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = text[error.start]
        raise APIError(400, f"{path}: {what} is not valid Unicode (a lone surrogate \\u{ord(bad):04x} at character "
                       f"{error.start}); send UTF-8 text", param=path, code="invalid_unicode") from None


__all__ = ["check_values", "parse_body"]
