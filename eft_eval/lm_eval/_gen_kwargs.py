"""lm-eval `gen_kwargs` (a task YAML's `generation_kwargs`, `--gen_kwargs`) as EFT sampling settings.

lm-eval hands them over as it read them: numbers from YAML or its own parser, words such as
`do_sample: "no"` as text. Each value is checked here and a wrong one is an error naming the task,
the key and the value. Read leniently they once changed the run: `top_p=0` became 1.0 (a falsy
value replaced by the default), `temperature=-1,do_sample=true` decoded greedily, `top_k=-3` ended
in a torch traceback. lm-eval's own conventions are kept: temperature 0 is greedy whatever
`do_sample` says, a temperature > 0 without `do_sample` samples (`normalize_gen_kwargs`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from lm_eval.models.utils import normalize_gen_kwargs

from eft_eval.models import SamplingConfig, prompt_key
from eft_eval.parsing import SAMPLING_RANGES, parse_bool

HONOURED = frozenset({"until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k"})
"""gen_kwargs the EFT sampler honours; others are reported once and ignored."""
_MAX_TOKEN_ALIASES = ("max_gen_toks", "max_new_tokens", "max_tokens", "max_completion_tokens")


def gen_kwargs_source(task_name: str | None) -> str:
    """How an error names where the gen_kwargs came from."""
    task = f" of task {task_name!r}" if task_name else ""
    return f"gen_kwargs{task} (its YAML's generation_kwargs or --gen_kwargs)"


def sampling_config(gen_kwargs: Mapping[str, Any], seed: int, source: str) -> SamplingConfig:
    """The sampler's settings from one request's gen_kwargs; wrong values are one-line errors."""
    checked = dict(gen_kwargs)
    if checked.get("do_sample") is not None:
        checked["do_sample"] = parse_bool(checked["do_sample"], "do_sample", source)
    if checked.get("temperature") is not None:
        temperature = SAMPLING_RANGES["temperature"].parse(checked["temperature"], "temperature", source)
        checked["temperature"] = float(temperature)
    else:
        checked.pop("temperature", None)  # lm-eval reads a missing temperature as 0 (greedy)
    for key in _MAX_TOKEN_ALIASES:
        if checked.get(key) is not None:
            checked[key] = SAMPLING_RANGES["max_new_tokens"].parse(checked[key], key, source)
    kwargs = normalize_gen_kwargs(checked, default_max_gen_toks=256)
    temperature = float(kwargs.get("temperature") or 0.0)
    return SamplingConfig(
        max_new_tokens=int(kwargs["max_gen_toks"]),
        do_sample=bool(kwargs.get("do_sample")) and temperature > 0,
        temperature=temperature if temperature > 0 else 1.0,
        top_p=_top_p(kwargs.get("top_p"), source),
        top_k=_top_k(kwargs.get("top_k"), source),
        seed=seed,
        stop=tuple(str(s) for s in kwargs.get("until") or [] if s),
    )


def _top_p(value: Any, source: str) -> float:
    # 0 is refused rather than read as "off": it would keep no token at all (1 turns top-p off).
    if value is None:
        return 1.0
    return float(SAMPLING_RANGES["top_p"].parse(value, "top_p", source))


def _top_k(value: Any, source: str) -> int:
    return 0 if value is None else int(SAMPLING_RANGES["top_k"].parse(value, "top_k", source))


def sampling_keys(requests: Sequence[Any]) -> list[str]:
    """Each `generate_until` request's sampling key: copies of one request (lm-eval's `repeats`) get
    distinct randomness; the n-th copy's sample does not depend on batching or on which process runs it."""
    seen: Counter[str] = Counter()
    keys = []
    for request in requests:
        identity = json.dumps([request.args[0], request.args[1]], sort_keys=True, default=str)
        keys.append(prompt_key((request.args[0], seen[identity])))
        seen[identity] += 1
    return keys


def ignored_keys(gen_kwargs: Mapping[str, Any]) -> set[str]:
    """gen_kwargs the EFT sampler does not use (max-token aliases are lm-eval's and are used)."""
    return set(gen_kwargs) - HONOURED - set(_MAX_TOKEN_ALIASES)


__all__ = ["HONOURED", "gen_kwargs_source", "ignored_keys", "sampling_config", "sampling_keys"]
