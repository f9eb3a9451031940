"""`ContinuousBatch`: rows that join a running batch at any step, with any settings, and rows that
leave it, each get token for token what `EFTModel.generate` gives them alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

QUERIES = ["Why is the sky blue?", "How do I bake bread? Please explain every step in detail, from flour to oven.",
           "Hi", "What is the capital of France?", "Tell me a joke.", "Hi"]
SETTINGS: list[dict[str, Any]] = [
    {"max_new_tokens": 14},
    {"max_new_tokens": 9, "do_sample": True, "temperature": 0.8, "top_p": 0.9, "seed": 3},
    {"max_new_tokens": 20, "do_sample": True, "temperature": 1.2, "top_k": 5, "seed": 11},
    {"max_new_tokens": 6, "do_sample": True, "temperature": 0.8, "top_p": 0.9, "seed": 4},
    {"max_new_tokens": 16, "stop": ["e"]},
    {"max_new_tokens": 12, "do_sample": True, "temperature": 0.7, "seed": 5},
]


@pytest.fixture(scope="module")
def model(tiny_family: dict[str, Path]) -> Any:
    from eft_eval.models import EFTModel

    return EFTModel.from_spec(f"base={tiny_family['large_base']},ft={tiny_family['small_ft']},"
                              f"ref={tiny_family['small_base']}")


def _joining(model: Any, index: int) -> Any:
    from eft_eval.models import JoiningRow, SamplingConfig, prompt_key, seeded_key

    config = SamplingConfig(**SETTINGS[index])
    prompt_ids = [ids[0] for ids in model.encode([QUERIES[index]])]
    return JoiningRow(prompt_ids, seeded_key(config.seed, prompt_key(QUERIES[index])), config,
                      frozenset(model.eos_token_ids))


def _batch(model: Any) -> Any:
    from eft_eval.models import ContinuousBatch

    return ContinuousBatch([c.model for c in model.forward_components], model.compose, model.pad_token_id,
                           model.vocab_size, model.detokenize)


def test_rows_joining_at_different_steps_with_mixed_settings_each_equal_generate(model: Any) -> None:
    expected = [model.generate([q], **s)[0] for q, s in zip(QUERIES, SETTINGS)]
    batch = _batch(model)
    joins = {0: [0], 2: [1, 2], 3: [3], 5: [4, 5]}  # step -> rows joining before it; 2 and 5 share a prompt
    results: dict[int, Any] = {}
    widths = []
    step = 0
    while step <= max(joins) or len(batch):
        batch.join([_joining(model, i) for i in joins.get(step, [])], joins.get(step, []))
        if len(batch):
            results.update(batch.step().finished)
            widths.append(len(batch))
        step += 1
    assert [results[i].text for i in range(len(QUERIES))] == [g.text for g in expected]
    assert [results[i].token_ids for i in range(len(QUERIES))] == [g.token_ids for g in expected]
    assert [results[i].finish_reason for i in range(len(QUERIES))] == [g.finish_reason for g in expected]
    assert max(widths) >= 4  # rows really overlapped


def test_a_cancelled_row_leaves_and_the_others_are_unchanged(model: Any) -> None:
    expected = [model.generate([QUERIES[i]], **SETTINGS[i])[0] for i in (0, 2)]
    batch = _batch(model)
    batch.join([_joining(model, 0), _joining(model, 1), _joining(model, 2)], [0, 1, 2])
    results: dict[int, Any] = {}
    results.update(batch.step().finished)
    results.update(batch.step().finished)
    cancelled = batch.cancel({1})
    assert cancelled[1].finish_reason == "cancelled" and len(cancelled[1].token_ids) == 2
    assert batch.tags == [0, 2]
    while len(batch):
        results.update(batch.step().finished)
    assert [results[0].token_ids, results[2].token_ids] == [g.token_ids for g in expected]


def test_per_row_choice_equals_the_one_config_choice(model: Any) -> None:
    import torch

    from eft_eval.models import SamplingConfig, choose_tokens_per_row
    from eft_eval.models._sampling import choose_next_tokens

    composed = torch.log_softmax(torch.randn(6, 50, generator=torch.Generator().manual_seed(0)), dim=-1)
    configs = [SamplingConfig(**{k: v for k, v in s.items() if k != "stop"}) for s in SETTINGS]
    keys = [f"{i}|k" for i in range(6)]
    steps = [0, 3, 1, 7, 2, 5]
    together = choose_tokens_per_row(composed, configs, keys, steps).tolist()
    alone = [int(choose_next_tokens(composed[i:i + 1], configs[i], [keys[i]], steps[i])[0]) for i in range(6)]
    assert together == alone


def test_rows_joining_as_others_leave_take_their_slots_and_each_equal_generate(model: Any,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from eft_eval.models import JoiningRow, SamplingConfig, prompt_key, seeded_key

    monkeypatch.setattr(model, "eos_token_ids", set())  # every row exactly its length: the steps below are known
    lengths = {0: 3, 2: 3, 3: 5, 1: 6, 4: 4, 5: 7}
    settings = {i: {**{k: v for k, v in SETTINGS[i].items() if k != "stop"}, "max_new_tokens": n}
                for i, n in lengths.items()}
    expected = {i: model.generate([QUERIES[i]], **s)[0] for i, s in settings.items()}

    def joining(index: int) -> JoiningRow:
        config = SamplingConfig(**settings[index])
        return JoiningRow([ids[0] for ids in model.encode([QUERIES[index]])],
                          seeded_key(config.seed, prompt_key(QUERIES[index])), config, frozenset())

    batch = _batch(model)
    # Rows 0 and 2 leave after step 2; row 1 (the longest prompt: the batch widens) takes row 0's
    # slot and row 2's is dropped. Row 3 leaves after step 4; row 4 takes its slot, row 5 is appended.
    joins = {0: [0, 2, 3], 3: [1], 5: [4, 5]}
    tags_after_join = {}
    results: dict[int, Any] = {}
    step = 0
    while step <= max(joins) or len(batch):
        batch.join([joining(i) for i in joins.get(step, [])], joins.get(step, []))
        tags_after_join[step] = batch.tags
        results.update(batch.step().finished)
        step += 1
    assert tags_after_join[3] == [1, 3] and tags_after_join[5] == [1, 4, 5]
    assert {i: (r.token_ids, r.finish_reason) for i, r in results.items()} == {
        i: (g.token_ids, g.finish_reason) for i, g in expected.items()}
