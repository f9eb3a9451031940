"""The KV-cache argument of a transformers forward pass, under the name the installed version documents.

transformers 5.2x renamed a model's `past_key_values=` argument (and the `past_key_values` field of its
outputs) to `cache`, warning that the old name goes away in 5.40. Versions before the rename do not
know `cache=`: a model would take it into `**kwargs` and silently run without a cache. So the name is
chosen per model class from its `forward` signature, and read back from whichever field the output has.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


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
