"""Token-level analysis of up-scaling (paper Figure 7): where does EFT differ from the small model?

Along each response, the total variation distance between the small fine-tuned model's next-token
conditional and the EFT conditional,

    TV_t = 1/2 * sum_y | p_eft(y | x, y_<t) - p_ft(y | x, y_<t) |,

says how much the large base changes the small model's choice at step t. The paper finds it small
for most tokens, which is what makes speculative decoding with the small model as draft pay off.
Per token we also keep the tokens whose probability EFT raised and lowered the most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from eft_eval.models import EFTModel, Prompt

LOW_TV = 0.1
"""The summary's threshold: the share of tokens whose TV is below it."""


@dataclass
class ReweightedToken:
    token: str
    p_ft: float
    p_eft: float


@dataclass
class TokenTV:
    """One response token: its TV and the tokens EFT up- and down-weighted most at its step."""

    token_id: int
    text: str
    tv: float
    up: list[ReweightedToken]
    down: list[ReweightedToken]


@dataclass
class ResponseTV:
    prompt: Any
    response: str
    tokens: list[TokenTV]


def token_tv(
    model: EFTModel, prompts: Sequence[Prompt], responses: Sequence[Sequence[int]], top: int = 3
) -> list[ResponseTV]:
    """TV between the first fine-tuned model's and the EFT conditional at every response token."""
    from eft_eval.models import continuation_logprobs, draft_component_index

    if not model.spec.deltas:
        raise ValueError("token TV compares a fine-tuned model with EFT: the spec needs a delta (ft, ref)")
    prompt_ids = model.encode(prompts)
    eft = model.score_ids(prompt_ids, responses)
    index = draft_component_index(model)
    ft = continuation_logprobs(model.forward_components[index].model, prompt_ids[index], responses, model.pad_token_id,
                               model.vocab_size)
    results = []
    for prompt, ids, eft_logprobs, ft_logprobs in zip(prompts, responses, eft, ft):
        p_eft, p_ft = eft_logprobs.double().exp(), ft_logprobs.to(eft_logprobs.device).double().exp()
        tv = 0.5 * (p_eft - p_ft).abs().sum(-1)
        shift = p_eft - p_ft
        pieces = _token_texts(model, [int(token) for token in ids])
        tokens = [
            TokenTV(
                token_id=int(token), text=pieces[t], tv=float(tv[t]),
                up=_reweighted(model, shift[t], p_ft[t], p_eft[t], top, largest=True),
                down=_reweighted(model, shift[t], p_ft[t], p_eft[t], top, largest=False),
            )
            for t, token in enumerate(ids)
        ]
        results.append(ResponseTV(prompt=prompt, response=model.detokenize(list(ids)), tokens=tokens))
    return results


def _token_texts(model: EFTModel, ids: list[int]) -> list[str]:
    """Each token's share of the decoded response, so that the pieces join up to the response.

    Decoding tokens one by one would break characters split across byte-level tokens; here a
    character belongs to the token that completes it.
    """
    pieces, previous = [], ""
    for end in range(1, len(ids) + 1):
        text = model.detokenize(ids[:end])
        if text.endswith("\ufffd") and end < len(ids):  # an incomplete character: wait for its rest
            pieces.append("")
            continue
        pieces.append(text.removeprefix(previous))
        previous = text
    return pieces


def _reweighted(
    model: EFTModel, shift: torch.Tensor, p_ft: torch.Tensor, p_eft: torch.Tensor, top: int, largest: bool
) -> list[ReweightedToken]:
    # Ranked by the change in probability, not its ratio: a ratio singles out tokens that stay
    # negligible under both models.
    values, ids = torch.topk(shift, min(top, shift.numel()), largest=largest)
    return [
        ReweightedToken(model.detokenize([int(i)]), round(float(p_ft[i]), 6), round(float(p_eft[i]), 6))
        for v, i in zip(values.tolist(), ids.tolist())
        if (v > 0) == largest and v != 0
    ]


def summarize(responses: Sequence[ResponseTV]) -> dict[str, Any]:
    """Share of tokens with TV under `LOW_TV`, mean, median and max TV, over every response token."""
    values = torch.tensor([t.tv for r in responses for t in r.tokens], dtype=torch.float64)
    if values.numel() == 0:
        return {"tokens": 0, "responses": len(responses), "mean_tv": 0.0, "median_tv": 0.0, "max_tv": 0.0,
                f"share_tv_below_{LOW_TV}": 0.0}
    return {
        "tokens": int(values.numel()),
        "responses": len(responses),
        "mean_tv": round(float(values.mean()), 6),
        "median_tv": round(float(values.median()), 6),
        "max_tv": round(float(values.max()), 6),
        f"share_tv_below_{LOW_TV}": round(float((values < LOW_TV).double().mean()), 6),
    }


def to_records(responses: Sequence[ResponseTV]) -> list[dict[str, Any]]:
    """JSON-ready records, one per response."""
    return [asdict(r) for r in responses]
