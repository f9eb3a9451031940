"""Response lengths: the mean token count and the share cut off at the length limit, with intervals.

EFT's weights change how long answers are, and a judge's helpfulness score follows length: every
score is read beside these. Rows from runs made before lengths were recorded have no
`response_tokens`; they are counted as missing, never as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eft_eval.stats._agreement import proportion_estimate
from eft_eval.stats._bootstrap import bootstrap_estimate


def response_tokens(row: Mapping[str, Any]) -> int | None:
    """A sample's recorded response length in tokens, or None (not recorded)."""
    value = row.get("response_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_cut_off(row: Mapping[str, Any]) -> bool:
    """Whether the response ended at the length limit (`finish_reason: length`)."""
    return row.get("finish_reason") == "length"


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def summarize_lengths(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """results.json's `length`: `response_tokens` (mean, bootstrap interval) and `cut_off` (share of
    `finish_reason: length`) as `Estimate` dicts, `n` rows measured, `n_missing` without a length;
    None when no row records one."""
    lengths = [float(n) for row in rows if (n := response_tokens(row)) is not None]
    measured = [row for row in rows if response_tokens(row) is not None]
    if not measured:
        return None
    return {
        "response_tokens": bootstrap_estimate([lengths], _mean).to_dict(),
        "cut_off": proportion_estimate([is_cut_off(row) for row in measured]).to_dict(),
        "n": len(measured),
        "n_missing": len(rows) - len(measured),
    }


__all__ = ["is_cut_off", "response_tokens", "summarize_lengths"]
