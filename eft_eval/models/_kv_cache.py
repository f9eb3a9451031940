"""The KV-cache argument of a transformers forward pass, under the name the installed version documents.

transformers 5.2x renamed a model's `past_key_values=` argument (and the `past_key_values` field of its
outputs) to `cache`, warning that the old name goes away in 5.40. Versions before the rename do not
know `cache=`: a model would take it into `**kwargs` and silently run without a cache. So the name is
chosen per model class from its `forward` signature, and read back from whichever field the output has.

Continuous batching adds rows to a running cache, in the rows of rows that left or appended, and
drops its leading padding (`join_cache_rows`, `drop_leading_slots`), for caches whose layers are
plain dynamic ones (`mergeable`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any

import torch


@functools.cache
def _forward_takes_cache(model_class: Any) -> bool:
    try:
        parameters = inspect.signature(model_class.forward).parameters
    except (TypeError, ValueError):  # no introspectable signature: assume the current name
        return True
    return "cache" in parameters


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """`{"cache": cache}` for models that take `cache=`, else `{"past_key_values": cache}`."""
    model_class: Any = type(model)
    return {"cache": cache} if _forward_takes_cache(model_class) else {"past_key_values": cache}


def output_cache(output: Any) -> Any:
    """The KV cache a forward pass or `generate(return_dict_in_generate=True)` returned."""
    fields = getattr(output, "__dataclass_fields__", {})
    if "cache" in fields or "past_key_values" not in fields:
        return getattr(output, "cache", None)
    return output.past_key_values


# -- rows joining and leaving a running batch ------------------------------------------------------
#
# A running batch's cache holds, per layer, keys and values `[rows, heads, width, head_dim]`, every row
# left-padded to one `width` (its padding masked out by the attention mask, so whatever the padded
# slots hold never reaches a softmax: a masked score is the dtype's minimum, whose exp is exactly 0).
# Rows that join are prefilled on their own and concatenated; rows that leave are selected away.


def mergeable(cache: Any) -> bool:
    """Whether rows can join this cache by `join_cache_rows`: every layer a plain dynamic layer (keys
    and values of one growing width). Sliding-window and recurrent layers keep positions of their own."""
    layers = list(getattr(cache, "layers", None) or [])
    return bool(layers) and all(
        not getattr(layer, "is_sliding", False) and type(layer).__name__ == "DynamicLayer" for layer in layers)


def _stacked(first: torch.Tensor, second: torch.Tensor, width: int) -> torch.Tensor:
    """`first` `[r1, heads, w1, dim]` over `second` `[r2, heads, w2, dim]` on the row axis, each
    left-padded with zeros to `width`: one allocation, each input copied once."""
    rows = first.shape[0]
    out = first.new_zeros((rows + second.shape[0], *first.shape[1:-2], width, first.shape[-1]))
    out[:rows, ..., width - first.shape[-2]:, :] = first
    out[rows:, ..., width - second.shape[-2]:, :] = second.to(first.device)
    return out


def join_cache_rows(cache: Any, joining: Any, slots: Sequence[int] = ()) -> int:
    """Add the rows of `joining` to `cache`, in place; returns the common width.

    The first `len(slots)` joining rows take over the rows `slots` of `cache` (rows that left: their
    keys and values are overwritten); the others are appended. Algorithm, per layer:
      1. W = max(width of `cache`, width of `joining`);
      2. if W is wider than `cache`, or rows are appended: one new allocation holding `cache`'s rows
         left-padded with zeros to W, then the appended joining rows, left-padded alike (each
         copied once); else `cache`'s keys and values stay where they are;
      3. the joining rows for `slots` are left-padded to W and written into those rows.
    (The callers pad their attention masks with zeros alike, so padded slots are masked.) A batch
    whose leaving rows are replaced by joining ones thus copies only the joining rows' caches.
    """
    width = max(cache.get_seq_length(), joining.get_seq_length())
    placed = len(slots)
    index = torch.tensor(list(slots), dtype=torch.long)
    for layer, other in zip(cache.layers, joining.layers):
        for name in ("keys", "values"):
            mine, theirs = getattr(layer, name), getattr(other, name).to(getattr(layer, name).device)
            if width > mine.shape[-2] or placed < theirs.shape[0]:
                mine = _stacked(mine, theirs[placed:], width)
            if placed:
                mine[index.to(mine.device)] = _stacked(theirs[:placed], theirs[:0], width)
            setattr(layer, name, mine)
    return width


def drop_leading_slots(cache: Any, count: int) -> None:
    """Drop the first `count` slots of every layer (padding no remaining row attends to), in place."""
    if count <= 0:
        return
    for layer in cache.layers:
        layer.keys = layer.keys[..., count:, :]
        layer.values = layer.values[..., count:, :]
