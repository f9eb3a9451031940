"""The EFT composition as a pure function of log-prob tensors (hand-built examples)."""

from __future__ import annotations

import math

import pytest
import torch

from eft_eval.models._compose import compose_logprobs, top_p_mask
from eft_eval.models._sampling import filter_for_sampling


def log(probs: list[float]) -> torch.Tensor:
    return torch.tensor(probs, dtype=torch.float64).log()


def test_composition_is_eq5_renormalized() -> None:
    base, ft, ref = log([0.5, 0.3, 0.2]), log([0.2, 0.2, 0.6]), log([0.4, 0.4, 0.2])
    unnormalized = [0.5 * 0.2 / 0.4, 0.3 * 0.2 / 0.4, 0.2 * 0.6 / 0.2]
    expected = [p / sum(unnormalized) for p in unnormalized]
    got = compose_logprobs(base, [(ft, ref)]).exp()
    assert torch.allclose(got.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-6)


def test_beta_and_weights_scale_the_deltas() -> None:
    base, ft1, ref, ft2 = log([0.5, 0.5]), log([0.9, 0.1]), log([0.5, 0.5]), log([0.2, 0.8])
    # log p = log base + beta * (w1 * (ft1 - ref) + w2 * (ft2 - ref))
    beta, alpha = 2.0, 0.25
    logits = [
        math.log(0.5) + beta * (alpha * math.log(0.9 / 0.5) + (1 - alpha) * math.log(0.2 / 0.5)),
        math.log(0.5) + beta * (alpha * math.log(0.1 / 0.5) + (1 - alpha) * math.log(0.8 / 0.5)),
    ]
    expected = torch.log_softmax(torch.tensor(logits), dim=-1)
    got = compose_logprobs(base, [(ft1, ref), (ft2, ref)], [alpha, 1 - alpha], beta=beta)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(compose_logprobs(base, [(ft1, ref)], beta=0.0), base.float(), atol=1e-6)


def test_top_p_filtering_of_upscaling_weights_matches_definition() -> None:
    # Small fine-tuned conditional: top-0.7 set is {token 0, token 1} (0.5, then 0.5 + 0.3 >= 0.7).
    small_ft = log([0.5, 0.3, 0.15, 0.05])
    large_base = log([0.1, 0.6, 0.1, 0.2])
    small_base = log([0.25, 0.25, 0.25, 0.25])
    got = compose_logprobs(large_base, [(small_ft, small_base)], top_p_weights=0.7).exp().double()
    # Inside the set: p_ft * p_base_large / p_base_small; outside: factor 1, i.e. p_ft.
    unnormalized = [0.5 * 0.1 / 0.25, 0.3 * 0.6 / 0.25, 0.15, 0.05]
    expected = torch.tensor([p / sum(unnormalized) for p in unnormalized], dtype=torch.float64)
    assert torch.allclose(got, expected, atol=1e-6)
    # Without filtering every token is reweighted: a different distribution.
    unfiltered = compose_logprobs(large_base, [(small_ft, small_base)]).exp().double()
    assert not torch.allclose(unfiltered, expected, atol=1e-3)


def test_top_p_mask_keeps_smallest_set_reaching_p() -> None:
    lp = log([0.1, 0.6, 0.05, 0.25])
    assert top_p_mask(lp, 0.6).tolist() == [False, True, False, False]
    assert top_p_mask(lp, 0.61).tolist() == [False, True, False, True]
    assert top_p_mask(lp, 1.0).tolist() == [True, True, True, True]
    with pytest.raises(ValueError):
        top_p_mask(lp, 0.0)


def test_filter_for_sampling_temperature_top_k_top_p() -> None:
    lp = log([0.1, 0.6, 0.05, 0.25])
    hot = filter_for_sampling(lp, temperature=2.0).exp()
    expected = torch.tensor([0.1, 0.6, 0.05, 0.25]).sqrt()
    assert torch.allclose(hot, expected / expected.sum(), atol=1e-6)
    top2 = filter_for_sampling(lp, top_k=2).exp()
    assert torch.allclose(top2, torch.tensor([0.0, 0.6 / 0.85, 0.0, 0.25 / 0.85]), atol=1e-6)
    nucleus = filter_for_sampling(lp, top_p=0.5).exp()
    assert nucleus.tolist() == [0.0, 1.0, 0.0, 0.0]
