"""Response lengths beside every score difference: EFT's weights change how long answers are, and a
judge's helpfulness score follows length, so a score difference is read with its length difference.

The length difference is `B - A` in mean `response_tokens`, paired over the prompts the score
difference uses (prompts resampled, as for the scores). Runs made before lengths were recorded
have none: their fields are None, never zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eft_eval.analysis._runs import LoadedRun
from eft_eval.stats import BootstrapSettings, paired_difference, response_tokens


def tokens_by_prompt(run: LoadedRun) -> dict[str, float]:
    """Prompt id -> the recorded response length in tokens (prompts without one are left out)."""
    return {prompt_id: float(n) for prompt_id, row in zip(run.prompt_ids, run.rows)
            if (n := response_tokens(row)) is not None}


def mean_tokens(run: LoadedRun, prompt_ids: Sequence[str] | None = None) -> float | None:
    """The run's mean response length over `prompt_ids` (default all) that recorded one; None if none did."""
    tokens = tokens_by_prompt(run)
    values = [tokens[p] for p in (prompt_ids if prompt_ids is not None else tokens) if p in tokens]
    return float(np.mean(values)) if values else None


def length_difference(run_a: LoadedRun, run_b: LoadedRun, prompt_ids: Sequence[str],
                      settings: BootstrapSettings) -> dict[str, Any]:
    """`length_difference` (B - A mean tokens over `prompt_ids` both recorded), `length_difference_stderr`,
    `length_difference_ci` ([low, high], paired bootstrap) and `n_length_paired`."""
    a, b = tokens_by_prompt(run_a), tokens_by_prompt(run_b)
    both = [p for p in prompt_ids if p in a and p in b]
    if not both:
        return {"length_difference": None, "length_difference_stderr": None, "length_difference_ci": None,
                "n_length_paired": 0}
    estimate = paired_difference([a[p] for p in both], [b[p] for p in both], settings).difference
    defined = estimate.to_dict()
    return {"length_difference": defined["value"], "length_difference_stderr": defined["standard_error"],
            "length_difference_ci": None if defined["ci_low"] is None else [defined["ci_low"], defined["ci_high"]],
            "n_length_paired": len(both)}


__all__ = ["length_difference", "mean_tokens", "tokens_by_prompt"]
