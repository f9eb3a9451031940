"""`analyze compare`: two configurations on the prompts both scored, prompt by prompt.

The difference is `B - A` per prompt; its mean has a bootstrap interval (prompts resampled, so
the pairing is kept), and scipy's Wilcoxon signed-rank and sign tests give p-values. Beside it,
the difference in response length (tokens) on the same prompts, paired the same way.

Prompts are paired by doc_id, and a pair must be the same prompt: runs whose texts differ under
one doc_id (another task, seed or data file) are refused, unless `only_same_prompts` asks to
pair only the prompts whose text is the same (the others are counted, `n_different_prompts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eft_eval.analysis._lengths import length_difference, mean_tokens
from eft_eval.analysis._runs import (
    LoadedRun,
    different_prompts,
    paired_scores,
    refuse_different_prompts,
)
from eft_eval.stats import BootstrapSettings, paired_difference


def compare_analysis(
    run_a: LoadedRun, run_b: LoadedRun, judges: Sequence[str] | None = None, settings: BootstrapSettings | None = None,
    *, only_same_prompts: bool = False,
) -> dict[str, Any]:
    """compare.json's content: one row per judge."""
    settings = settings or BootstrapSettings()
    if not only_same_prompts:
        refuse_different_prompts([run_a, run_b], "compare", "; pass --only-same-prompts to compare only the prompts "
                                                            "whose text is the same")
    different = different_prompts([run_a, run_b])
    names = list(judges or [j for j in run_a.judge_names() if j in set(run_b.judge_names())])
    rows = []
    for judge in names:
        paired = paired_scores([run_a, run_b], judge, leave_out=different)
        a, b = np.asarray(paired.matrix[0]), np.asarray(paired.matrix[1])
        result = paired_difference(a, b, settings)
        better = run_b.direction(judge)
        difference = result.difference
        significant = difference.ci_low > 0 or difference.ci_high < 0
        rows.append({
            "judge": judge,
            "higher_is_better": better,
            "n_paired": paired.n_paired,
            "mean_a": float(a.mean()) if a.size else None,
            "mean_b": float(b.mean()) if b.size else None,
            "difference": difference.value,
            "difference_stderr": difference.standard_error,
            "difference_ci": [difference.ci_low, difference.ci_high],
            "wilcoxon_p": result.wilcoxon_p,
            "sign_test_p": result.sign_test_p,
            "n_b_higher": result.n_positive,
            "n_b_lower": result.n_negative,
            "n_tied": result.n_zero,
            # Which run is better: only when the interval excludes 0 and the judge's direction is known.
            "better": (("b" if (difference.value > 0) == better else "a") if significant
                       and better is not None else None),
            "excluded_a": {k: v for k, v in paired.per_run[0].counts().items() if k != "n_scored"},
            "excluded_b": {k: v for k, v in paired.per_run[1].counts().items() if k != "n_scored"},
            "n_unpaired": paired.per_run[0].n_scored + paired.per_run[1].n_scored - 2 * paired.n_paired,
            # Beside the score difference: the answers' length difference on the same prompts, paired.
            "mean_tokens_a": mean_tokens(run_a, paired.prompt_ids),
            "mean_tokens_b": mean_tokens(run_b, paired.prompt_ids),
            **length_difference(run_a, run_b, paired.prompt_ids, settings),
        })
    return {"run_a": str(run_a.path), "run_b": str(run_b.path), "label_a": run_a.label, "label_b": run_b.label,
            "rows": rows, "n_different_prompts": len(different),
            "bootstrap": {"n_resamples": settings.n_resamples, "seed": settings.seed,
                          "confidence_level": settings.confidence_level}}
