"""`analyze power`: from a pilot of two runs, the smallest difference its prompts can detect and the
prompts a given difference needs, per judge (`eft_eval.stats.paired_power`, Miller 2024).

The runs are paired as `analyze compare` pairs them (`paired_runs`): the prompts both scored, a
doc_id only when its text is the same. The spread that matters is that of the per-prompt
differences B - A; `--effect` is in each judge's score units (a 1-10 judge and a 0/1 judge need
their own), so with several judges of different scales give one `--judge` at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eft_eval.analysis._compare import paired_runs
from eft_eval.analysis._runs import LoadedRun
from eft_eval.stats import DEFAULT_POWER, DEFAULT_SIGNIFICANCE, MDE_TEST, check_power_settings, paired_power


def power_analysis(
    run_a: LoadedRun, run_b: LoadedRun, judges: Sequence[str] | None = None, *,
    effect: float | None = None, power: float = DEFAULT_POWER, alpha: float = DEFAULT_SIGNIFICANCE,
    only_same_prompts: bool = False,
) -> dict[str, Any]:
    """power.json's content: per judge (default: every judge of both runs), the spread of B - A on the
    paired prompts, its minimum detectable effect and, with `effect`, the paired prompts needed."""
    check_power_settings(alpha, power, effect)  # before reading any judgment: a bad flag is the first error
    pairs, different = paired_runs(run_a, run_b, judges, only_same_prompts=only_same_prompts, where="power")
    rows = []
    for judge, paired in pairs.items():
        result = paired_power(np.asarray(paired.matrix[0]), np.asarray(paired.matrix[1]), alpha, power, effect)
        rows.append({"judge": judge, "higher_is_better": run_b.direction(judge), **result.to_dict(),
                     "n_unpaired": paired.per_run[0].n_scored + paired.per_run[1].n_scored - 2 * paired.n_paired})
    return {"run_a": str(run_a.path), "run_b": str(run_b.path), "label_a": run_a.label, "label_b": run_b.label,
            "rows": rows, "n_different_prompts": len(different), "test": MDE_TEST}

