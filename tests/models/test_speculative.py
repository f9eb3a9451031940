"""Speculative EFT decoding: identical to plain decoding, consistent caches, exact distribution."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from scipy.stats import chisquare

from eft_eval.bench._speculative_family import (
    FamilyShape,
    build_family,
    family_eft_model,
)
from eft_eval.errors import EFTEvalError
from eft_eval.models._decoding import ComponentStream
from eft_eval.models._sampling import SamplingConfig, filter_for_sampling
from eft_eval.models._scoring import continuation_logprobs
from eft_eval.models._speculative import SpeculativeStats, extend_stream, rewind_stream
from eft_eval.testing import tiny_llama, tiny_tokenizer

PROMPTS = [
    "Why is the sky blue?",
    "Hi",
    "Explain like I'm five: how do plants make food from light, water and air?",
    "What is the capital of France?",
]
# A base that nudges the small reference enough that drafts are often, but not always, accepted.
TEST_SHAPE = FamilyShape(small_hidden=32, extra_layers=1, large_intermediate=128, base_noise=0.3)


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def family(tokenizer):
    return build_family(tokenizer, TEST_SHAPE)


@pytest.fixture(scope="module")
def eft(family, tokenizer):
    return family_eft_model(family, tokenizer, top_p_weights=0.9)


CONFIGS = {
    "greedy": SamplingConfig(max_new_tokens=24),
    "sampled": SamplingConfig(max_new_tokens=24, do_sample=True, temperature=0.8, top_p=0.9, seed=3),
}


@pytest.fixture(scope="module")
def plain_outputs(eft):
    ids, keys = eft.encode(PROMPTS), [f"prompt-{i}" for i in range(len(PROMPTS))]
    return {name: eft.generate_ids(ids, config, keys, batch_size=4) for name, config in CONFIGS.items()}


@pytest.mark.parametrize("block", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("decoding", sorted(CONFIGS))
def test_exact_mode_reproduces_plain_decoding(eft, plain_outputs, block, decoding):
    config, plain = CONFIGS[decoding], plain_outputs[decoding]
    ids, keys = eft.encode(PROMPTS), [f"prompt-{i}" for i in range(len(PROMPTS))]
    stats = SpeculativeStats()
    fast = eft.generate_ids(ids, config, keys, batch_size=4, speculative_block=block, speculative_stats=stats)
    assert [g.token_ids for g in fast] == [g.token_ids for g in plain]
    assert [(g.text, g.finish_reason) for g in fast] == [(g.text, g.finish_reason) for g in plain]
    # The case is non-trivial: drafts are rejected sometimes, accepted often, and (block > 1)
    # rows of one batch keep different numbers of tokens in the same round.
    assert 0.5 < stats.acceptance_rate < 1.0
    # Blocks produced every token but each row's first (chosen from the prefill); EOS is not kept.
    eos_count = sum(g.finish_reason == "eos" for g in plain)
    assert stats.emitted + len(PROMPTS) == sum(len(g.token_ids) for g in plain) + eos_count
    if block > 1:
        assert stats.uneven_rounds > 0
        assert max(stats.emitted_per_block) > 1
        assert stats.rounds < max(len(g.token_ids) for g in plain)


def test_generate_hook_matches_plain_and_validates(eft, family, tokenizer):
    kwargs = {"max_new_tokens": 12, "do_sample": True, "temperature": 1.2, "top_k": 20, "seed": 7, "batch_size": 3}
    assert ([g.token_ids for g in eft.generate(PROMPTS, speculative_block=3, **kwargs)]
            == [g.token_ids for g in eft.generate(PROMPTS, **kwargs)])
    with pytest.raises(EFTEvalError, match="mode"):
        eft.generate(PROMPTS[:1], max_new_tokens=2, speculative_block=2, speculative_mode="fast")
    with pytest.raises(EFTEvalError, match="ft"):
        family_eft_model({"base": family["base"]}, tokenizer).generate(PROMPTS[:1], speculative_block=2)


def test_speculative_settings_are_checked_once_with_one_error_type(eft):
    """Library, decoder and lm-eval model_args share one check: a bad block or mode is always an
    EFTEvalError naming the setting (the decoder used to raise ValueError, generate to ignore them)."""
    from eft_eval.lm_eval._args import backend_options
    from eft_eval.models._speculative import speculative_decode

    for block, mode, culprit in [(-1, "exact", "speculative_block=-1"), (0, "fast", "speculative_mode='fast'"),
                                 (2, "fast", "speculative_mode='fast'")]:
        with pytest.raises(EFTEvalError, match=culprit):
            eft.generate(PROMPTS[:1], max_new_tokens=2, speculative_block=block, speculative_mode=mode)
        with pytest.raises(EFTEvalError, match=culprit):
            speculative_decode([], eft.compose, SamplingConfig(), [], set(), eft.detokenize, draft_index=1,
                               block=block, mode=mode)  # type: ignore[arg-type]
        with pytest.raises(EFTEvalError, match=f"eft model_args: {culprit}"):
            backend_options({"speculative_block": str(block), "speculative_mode": mode})


def test_speculative_decoding_sits_below_the_model_class():
    """No import circle, not even for type checking: the decoder works on streams, and `EFTModel`
    (which imports it) is what binds it to a model."""
    import ast
    import inspect

    import eft_eval.models._speculative as speculative

    tree = ast.parse(inspect.getsource(speculative))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name and "eft_model" in name}


def test_rewound_caches_match_uncached_recomputation(family, tokenizer):
    """Feed blocks, keep a different prefix of each row's block, and compare with a fresh forward."""
    pad, vocab = tokenizer.pad_token_id, len(tokenizer)
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS[:3]]
    generator = torch.Generator().manual_seed(0)
    rounds = [(4, [1, 4, 2]), (3, [2, 1, 1]), (5, [1, 1, 1]), (2, [2, 2, 2]), (6, [3, 6, 5])]
    for name, model in [*family.items(), ("deep", tiny_llama(tokenizer, num_layers=3, seed=5))]:
        stream = ComponentStream(model, prompts, pad, vocab)
        stream.prefill()
        history: list[list[int]] = [[] for _ in prompts]
        for width, kept in rounds:
            block = torch.randint(3, vocab, (len(prompts), width), generator=generator)
            extend_stream(stream, block)
            rewind_stream(stream, width, torch.tensor(kept))
            for row, count in enumerate(kept):
                history[row] += block[row, :count].tolist()
            pending = torch.randint(3, vocab, (len(prompts),), generator=generator)
            cached = stream.advance(pending)
            for row in range(len(prompts)):
                history[row].append(int(pending[row]))
            # The uncached forward over prompt + kept tokens predicts the same next token.
            fresh = continuation_logprobs(model, prompts, [[*h, 0] for h in history], pad, vocab)
            expected = torch.stack([rows[-1] for rows in fresh])
            torch.testing.assert_close(cached, expected, atol=2e-4, rtol=1e-4, msg=name)
        # Columns no row kept were cut, not just masked: each round grows the cache by its longest
        # kept prefix plus the pending token.
        grown = sum(max(kept) + 1 for _, kept in rounds)
        assert stream.cache.get_seq_length() == max(len(p) for p in prompts) + grown
        assert stream.attention_mask.shape[1] == stream.cache.get_seq_length()


def _sequence_distribution(model, prompt: str, config: SamplingConfig) -> dict[tuple[int, ...], float]:
    """Exact probability of every response (up to max_new_tokens, or ending in EOS)."""
    ids = model.encode([prompt])
    frontier, finished = [((), 1.0)], {}
    for _ in range(config.max_new_tokens):
        scored = model.score_ids([[c[0]] * len(frontier) for c in ids], [[*seq, 0] for seq, _ in frontier])
        grown = []
        for (seq, prob), dist in zip(frontier, scored):
            probs = filter_for_sampling(dist[-1], config.temperature, config.top_p, config.top_k).double().exp()
            for token in torch.nonzero(probs > 0).flatten().tolist():
                if token in model.eos_token_ids:  # EOS ends the response and is not part of it
                    finished[seq] = finished.get(seq, 0.0) + prob * float(probs[token])
                else:
                    grown.append(((*seq, token), prob * float(probs[token])))
        frontier = grown
    finished.update(dict(frontier))
    return finished


def _chi_square_pvalue(samples: list[tuple[int, ...]], expected: dict[tuple[int, ...], float]) -> float:
    """Chi-square goodness of fit; outcomes expected fewer than 5 times are pooled into one bin."""
    n = len(samples)
    if any(expected.get(s, 0.0) == 0.0 for s in samples):
        return 0.0  # an impossible outcome
    big = sorted(seq for seq, p in expected.items() if p * n >= 5)
    observed = [sum(1 for s in samples if s == seq) for seq in big]
    expected_counts = [expected[seq] * n for seq in big]
    observed.append(n - sum(observed))
    expected_counts.append(n - sum(expected_counts))
    return float(chisquare(observed, expected_counts).pvalue)


def test_rejection_mode_samples_the_eft_distribution(tokenizer):
    # A base far enough from the reference that drafts are often rejected (residual draws matter)
    # and the draft's own distribution is clearly not the EFT one.
    family = build_family(tokenizer, FamilyShape(small_hidden=32, extra_layers=1, large_intermediate=128,
                                                 base_noise=1.5, seed=4))
    eft = family_eft_model(family, tokenizer)
    config = SamplingConfig(max_new_tokens=3, do_sample=True, temperature=1.3, top_k=4, seed=11)
    prompt, n = PROMPTS[0], 3000
    expected = _sequence_distribution(eft, prompt, config)
    assert abs(sum(expected.values()) - 1.0) < 1e-6
    ids = [[c[0]] * n for c in eft.encode([prompt])]
    keys = [f"draw-{i}" for i in range(n)]
    stats = SpeculativeStats()
    drawn = eft.generate_ids(ids, config, keys, batch_size=1000, speculative_block=2,
                             speculative_mode="rejection", speculative_stats=stats)
    samples = [tuple(g.token_ids) for g in drawn]
    # Rejections (and so residual draws) happen often enough for the test to cover them.
    assert 0.3 < stats.acceptance_rate < 0.95
    assert _chi_square_pvalue(samples, expected) > 1e-3
    # The harness is right (plain decoding passes) and has power: plain samples at a
    # higher temperature (same support, other weights) fail it.
    plain = eft.generate_ids(ids, config, keys, batch_size=1000)
    assert _chi_square_pvalue([tuple(g.token_ids) for g in plain], expected) > 1e-3
    hotter = eft.generate_ids(ids, dataclasses.replace(config, temperature=2.0), keys, batch_size=1000)
    assert _chi_square_pvalue([tuple(g.token_ids) for g in hotter], expected) < 1e-6


@pytest.mark.parametrize("mode", ["exact", "rejection"])
def test_rows_finishing_mid_block_on_stop_strings(eft, plain_outputs, mode):
    """Rows that end at a stop string inside a block are dropped while the others go on."""
    texts = [g.text for g in plain_outputs["sampled"]]
    stop = texts[0][5:8]  # occurs in the first response, so that row stops early
    assert len(stop) == 3
    config = dataclasses.replace(CONFIGS["sampled"], stop=(stop,))
    ids, keys = eft.encode(PROMPTS), [f"prompt-{i}" for i in range(len(PROMPTS))]
    plain = eft.generate_ids(ids, config, keys, batch_size=4)
    assert plain[0].finish_reason == "stop"
    assert len({len(g.token_ids) for g in plain}) > 1  # rows end at different steps
    fast = eft.generate_ids(ids, config, keys, batch_size=4, speculative_block=8, speculative_mode=mode)
    if mode == "exact":
        assert [(g.token_ids, g.text, g.finish_reason) for g in fast] == [
            (g.token_ids, g.text, g.finish_reason) for g in plain]
    for generation in fast:  # the stop string is cut, and nothing runs past max_new_tokens
        assert stop not in generation.text and len(generation.token_ids) <= config.max_new_tokens


def test_reward_interpolation_with_padded_vocabulary(family, tokenizer):
    """Two deltas sharing one reference, one model with output rows past the tokenizer's vocabulary."""
    from eft_eval.models._components import Component, LoadedModel
    from eft_eval.models._eft_model import EFTModel
    from eft_eval.models._spec import ComponentSpec, DeltaSpec, EFTSpec

    models = {**family, "ft2": tiny_llama(tokenizer, hidden_size=32, vocab_padding=8, seed=9)}
    specs = {name: ComponentSpec(model=f"<{name}>", format="chat" if name.startswith("ft") else "plain")
             for name in models}
    spec = EFTSpec(base=specs["base"], deltas=(DeltaSpec(specs["ft"], specs["ref"], 0.7),
                                               DeltaSpec(specs["ft2"], specs["ref"], 0.3)))
    roles = [("base", "base"), ("ft", "ft"), ("ref", "ref"), ("ft2", "ft2"), ("ref2", "ref")]
    eft = EFTModel(spec, [Component(role, specs[name], LoadedModel(models[name], tokenizer)) for role, name in roles])
    assert len(eft.forward_components) == 4  # the shared reference runs once
    ids, keys = eft.encode(PROMPTS), [f"prompt-{i}" for i in range(len(PROMPTS))]
    config = CONFIGS["sampled"]
    plain = eft.generate_ids(ids, config, keys, batch_size=4)
    stats = SpeculativeStats()
    fast = eft.generate_ids(ids, config, keys, batch_size=4, speculative_block=4, speculative_stats=stats)
    assert [g.token_ids for g in fast] == [g.token_ids for g in plain]
    assert 0 < stats.accepted < stats.verified
