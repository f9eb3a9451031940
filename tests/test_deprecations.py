"""No deprecated transformers call in our decoding, speculative decoding or local judge.

transformers reports renamed arguments two ways: a FutureWarning (`past_key_values=` passed to a
model) and a log line (`output.past_key_values` read back). pyproject's filterwarnings already turns
the first into an error for the whole suite; these tests also catch the second, on every call path
that keeps a KV cache.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from eft_eval.models._kv_cache import cache_kwargs, output_cache
from eft_eval.testing import build_chain_model


@pytest.fixture
def transformers_log() -> Iterator[list[str]]:
    """Every transformers log record while the test runs (warning_once's memory cleared first)."""
    from transformers.utils import logging as hf_logging

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    root = logging.getLogger("transformers")
    handler, before = Collect(level=logging.WARNING), hf_logging.get_verbosity()
    warning_once = getattr(logging.Logger, "warning_once", None)
    if warning_once is not None and hasattr(warning_once, "cache_clear"):
        warning_once.cache_clear()
    root.addHandler(handler)
    hf_logging.set_verbosity_warning()
    try:
        with warnings.catch_warnings():
            # transformers' channel for renamed arguments, whichever frame it is attributed to.
            warnings.filterwarnings("error", message=r".*deprecated", category=FutureWarning)
            yield records
    finally:
        root.removeHandler(handler)
        hf_logging.set_verbosity(before)


def deprecations(records: list[str]) -> list[str]:
    return [r for r in records if "deprecat" in r.lower()]


def test_eft_decoding_plain_and_speculative_use_the_current_cache_argument(
    tiny_family: dict[str, Path], transformers_log: list[str]
) -> None:
    from eft_eval import EFTModel

    spec = f"base={tiny_family['large_base']},ft={tiny_family['small_ft']},ref={tiny_family['small_base']}"
    model = EFTModel.from_spec(spec)
    plain = model.generate(["Hi there", "Why?"], max_new_tokens=6, do_sample=True, seed=0)
    fast = model.generate(["Hi there", "Why?"], max_new_tokens=6, do_sample=True, seed=0, speculative_block=3)
    assert [g.token_ids for g in plain] == [g.token_ids for g in fast]  # the cache really was used and rewound
    assert deprecations(transformers_log) == []


def test_local_judge_reuses_its_cache_without_deprecated_names(tmp_path: Path, transformers_log: list[str]) -> None:
    from eft_eval.judging import (
        JudgeConfig,
        JudgeItem,
        LocalModelSettings,
        judge_items_sync,
        load_judges,
    )

    model_dir = build_chain_model(tmp_path / "chain", "Looks accurate overall. Score: 2")
    config = JudgeConfig(backend="local", local=LocalModelSettings(model=str(model_dir), max_new_tokens=16),
                         cache_path=None, progress=False)
    (result,) = judge_items_sync([JudgeItem("What is 1+1?", "It is 2.")], load_judges(["factuality"]), config)
    assert result["factuality"]["score"] == 2.0
    assert deprecations(transformers_log) == []


def test_cache_argument_follows_the_models_forward_signature() -> None:
    from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)
    model = LlamaForCausalLM(config)
    cache = DynamicCache(config=config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = model(input_ids=torch.tensor([[1, 2, 3]]), use_cache=True, **cache_kwargs(model, cache))
    assert output_cache(out) is cache and cache.get_seq_length() == 3

    class OldStyle(torch.nn.Module):
        """A model as transformers before the rename defines it: no `cache` parameter."""

        def forward(self, input_ids: Any = None, past_key_values: Any = None, **kwargs: Any) -> Any:
            return past_key_values

    assert cache_kwargs(OldStyle(), cache) == {"past_key_values": cache}
