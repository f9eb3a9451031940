"""EFT composition: a pure function of per-component next-token log-prob tensors.

The paper's Eq. 5, per time step t:

    log p_eft(y_t) = log p_base(y_t) + beta * sum_i w_i * (log p_ft_i(y_t) - log p_ref_i(y_t)) - log Z_t

- up-scaling:   base = large pre-trained, ft/ref = small fine-tuned / small pre-trained;
- down-scaling: base = small pre-trained, ft/ref = large fine-tuned / large pre-trained;
- reward interpolation: two deltas with weights alpha and 1 - alpha (often sharing one ref);
- beta = 0 gives the base model; base == ref with one unit delta gives the fine-tuned model.

Top-p filtering of up-scaling weights (paper section 4.4): the composition can be read as the
first fine-tuned model's conditional times a reweighting factor, `p_eft = p_ft_1 * factor`. With
`top_p_weights = p`, the factor is applied only to tokens in the top-p set of `p_ft_1`; outside it
the factor is 1, i.e. the token keeps the fine-tuned model's log-prob. For plain up-scaling the
factor is `p_base_large / p_base_small`, exactly the paper's definition.

All tensors share the shape `[..., vocab]`; nothing here knows about models, batching or caches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def compose_logprobs(
    base: torch.Tensor,
    deltas: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
    weights: Sequence[float] | torch.Tensor | None = None,
    beta: float = 1.0,
    top_p_weights: float | None = None,
) -> torch.Tensor:
    """Normalized EFT log-probs from the base and `(ft_i, ref_i)` log-probs.

    Args:
        base: log-probs of the base (knowledge) model.
        deltas: pairs `(log p_ft_i, log p_ref_i)`; each pair's difference is a behaviour delta.
        weights: one weight per delta (default 1 each); reward interpolation uses alpha, 1 - alpha.
            A tensor `[..., n_deltas]` (the leading shape of `base`) gives each row its own
            weights: rows of several configurations over the same components (an alpha sweep)
            are then composed in one batch, each exactly as it would be alone.
        beta: reward strength multiplying every delta.
        top_p_weights: if set, reweight only the top-p set of the first fine-tuned model.
    Returns:
        log-probs normalized over the last dimension, in float32 or wider.
    """
    if isinstance(weights, torch.Tensor):
        if weights.shape != (*base.shape[:-1], len(deltas)):
            raise ValueError(f"per-row weights of shape {tuple(weights.shape)} for log-probs of shape "
                             f"{tuple(base.shape)} and {len(deltas)} deltas: expected "
                             f"{(*base.shape[:-1], len(deltas))}")
        # Same arithmetic as scalar weights, one row at a time: (beta * w) * (ft - ref).
        # (beta * w) in double, then float32: the very number a scalar weight becomes.
        scaled = (weights.to(base.device).double() * beta).float()
        per_delta: list[float | torch.Tensor] = list(scaled.unsqueeze(-1).unbind(-2))
    else:
        scalars = [1.0] * len(deltas) if weights is None else list(weights)
        if len(scalars) != len(deltas):
            raise ValueError(f"{len(deltas)} deltas but {len(scalars)} weights")
        per_delta = [beta * weight for weight in scalars]
    composed = base.float()
    for (ft, ref), weight in zip(deltas, per_delta):
        composed = composed + weight * (ft.float() - ref.float())
    if top_p_weights is not None and deltas:
        first_ft = deltas[0][0].float()
        keep = top_p_mask(first_ft, top_p_weights)
        # Outside the top-p set the reweighting factor is 1: the token keeps log p_ft_1.
        composed = torch.where(keep, composed, first_ft)
    return torch.log_softmax(composed, dim=-1)


def top_p_mask(logprobs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Boolean mask of the smallest set of tokens whose probability mass reaches `top_p`.

    The most likely token is always kept; ties at the boundary are resolved by sort order.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    sorted_logprobs, order = torch.sort(logprobs, dim=-1, descending=True)
    probs = sorted_logprobs.exp()
    # Mass strictly before each token: a token is kept while that mass is still below top_p.
    mass_before = torch.cumsum(probs, dim=-1) - probs
    keep_sorted = mass_before < top_p
    keep_sorted[..., 0] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
