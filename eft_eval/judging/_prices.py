"""Judge model prices (the shipped `prices.yaml` or `--prices FILE`) and prompt token counts.

A model the table does not list has no price: costs involving it are reported as "unknown",
never as 0, and `--budget` refuses to guess. Prompt tokens for a budget estimate come from
tiktoken when it is installed and knows the model, else from a stated, deliberately high
approximation (`APPROXIMATION`), so an estimate errs toward stopping early rather than overspending.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eft_eval.errors import EFTEvalError

SHIPPED_PRICES = Path(__file__).with_name("prices.yaml")
APPROXIMATION = "approximate: 1 token per 3 characters + 4 per message + 3 (tiktoken not available)"
DEFAULT_ANSWER_TOKENS = 1024
"""Answer limit assumed for a budget estimate when a judge's sampling sets no max_tokens."""
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Price:
    """USD per token."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input + completion_tokens * self.output


@dataclass(frozen=True)
class PriceTable:
    live: Mapping[str, Price]
    batch: Mapping[str, Price]
    source: str
    as_of: str | None
    path: Path

    def price(self, model: str, mode: str) -> Price | None:
        """The price of `model` ("gpt-4o-2024-08-06" falls back to "gpt-4o"), or None if unknown."""
        if model.startswith("local:"):  # --backend local: an in-process model, no API bill
            return Price(0.0, 0.0)
        table = self.batch if mode == "batch" else self.live
        return table.get(model) or table.get(_DATE_SUFFIX.sub("", model))

    def describe(self) -> dict[str, Any]:
        return {"file": str(self.path), "source": self.source, "as_of": self.as_of}


def load_prices(path: str | Path | None = None) -> PriceTable:
    """Read a price table; every problem is one line naming the file and the field."""
    path = Path(path) if path is not None else SHIPPED_PRICES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise EFTEvalError(f"{path}: cannot read the price table: {error}".replace("\n", " ")) from error
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise EFTEvalError(f"{path}: a price table needs a mapping 'models' of model: {{input, output}}")
    per = _number(data.get("per_tokens", 1_000_000), path, "per_tokens")
    discount = _number(data.get("batch_discount", 0.5), path, "batch_discount")
    if per <= 0 or not 0 <= discount <= 1:
        raise EFTEvalError(f"{path}: 'per_tokens' must be positive and 'batch_discount' between 0 and 1")
    live, batch = {}, {}
    for model, entry in data["models"].items():
        where = f"models.{model}"
        if not isinstance(entry, dict) or "input" not in entry or "output" not in entry:
            raise EFTEvalError(f"{path}: field '{where}' needs 'input' and 'output' (USD per {per:g} tokens)")
        values = {key: _number(entry[key], path, f"{where}.{key}") / per for key in entry
                  if key in ("input", "output", "batch_input", "batch_output")}
        unknown = sorted(set(entry) - {"input", "output", "batch_input", "batch_output"})
        if unknown:
            raise EFTEvalError(f"{path}: field '{where}.{unknown[0]}' is not a price field")
        live[str(model)] = Price(values["input"], values["output"])
        batch[str(model)] = Price(values.get("batch_input", values["input"] * discount),
                                  values.get("batch_output", values["output"] * discount))
    return PriceTable(live=live, batch=batch, source=str(data.get("source") or path), as_of=data.get("as_of"),
                      path=path)


def _number(value: Any, path: Path, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise EFTEvalError(f"{path}: field '{field}' must be a non-negative number, got {value!r}")
    return float(value)


def count_prompt_tokens(messages: Sequence[Mapping[str, str]], model: str) -> tuple[int, str]:
    """(prompt tokens, how they were counted) for one chat request."""
    encoding = _tiktoken_encoding(model)
    if encoding is not None:
        tokens = sum(len(encoding.encode(str(m.get("content") or ""))) + 4 for m in messages) + 3
        return tokens, f"tiktoken:{encoding.name}"
    characters = sum(len(str(m.get("content") or "")) for m in messages)
    return math.ceil(characters / 3) + 4 * len(messages) + 3, APPROXIMATION


_ENCODINGS: dict[str, Any] = {}


def _tiktoken_encoding(model: str) -> Any:
    """tiktoken's encoding for `model`, or None (not installed, unknown model, files not downloadable)."""
    if model not in _ENCODINGS:
        try:
            import tiktoken

            _ENCODINGS[model] = tiktoken.encoding_for_model(model)
        except Exception:  # noqa: BLE001 ImportError, KeyError for unknown models, network errors fetching the BPE file
            _ENCODINGS[model] = None
    return _ENCODINGS[model]


def answer_limit(params: Mapping[str, Any]) -> int:
    """Most completion tokens a request can cost: its max_tokens, else `DEFAULT_ANSWER_TOKENS`."""
    for key in ("max_completion_tokens", "max_tokens"):
        if isinstance(params.get(key), int):
            return int(params[key])
    return DEFAULT_ANSWER_TOKENS
