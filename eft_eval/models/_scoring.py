"""Per-position log-probs of given continuations under each component (one full forward pass each).

Used for lm-eval's `loglikelihood`, for token-level analysis and as the uncached reference in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


@torch.inference_mode()
def continuation_logprobs(
    model: Any,
    prompts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    pad_id: int,
    vocab_size: int,
) -> list[torch.Tensor]:
    """Next-token log-prob distributions at every continuation position.

    Returns, per row, a `[len(continuation), vocab]` tensor whose i-th row is the distribution
    over the continuation's i-th token given the prompt and the continuation's first i tokens.
    Rows are left-padded so that only the last `max(len(continuation)) + 1` positions need logits.
    """
    if any(not p for p in prompts):
        raise ValueError("every prompt needs at least one token (lm-eval prefixes empty contexts with BOS/EOS)")
    device = next(model.parameters()).device
    sequences = [[*p, *c] for p, c in zip(prompts, continuations)]
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, sequence in enumerate(sequences):
        ids[row, width - len(sequence):] = torch.tensor(sequence, dtype=torch.long)
        mask[row, width - len(sequence):] = 1
    positions = (mask.cumsum(-1) - 1).clamp_(min=0)
    longest = max(len(c) for c in continuations)
    out = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        use_cache=False,
        logits_to_keep=longest + 1,
    )
    logits = out.logits[:, :-1, :vocab_size]  # position j predicts token j + 1
    results = []
    for row, continuation in enumerate(continuations):
        count = len(continuation)
        row_logits = logits[row, logits.shape[1] - count:] if count else logits[row, :0]
        results.append(torch.log_softmax(row_logits.float(), dim=-1))
    return results
