"""`analyze agreement`: one judge against another on the same responses.

The statistics are the human study's (`eft_eval.stats`: agreement rate, Cohen's kappa, with
bootstrap standard errors) plus Spearman's correlation of the scores. Labels are `score >=
threshold` (factuality with threshold 1: "any factual error"). Run B is the reference; beside
the judges' agreement stand two trivial predictors of B, so a reader sees what a number means:
a constant label (B's most common one) and "longer response = higher score" (length above the
median; Spearman of length against B's scores).

Responses are matched by prompt id and must be the same text: a prompt whose responses differ
is excluded and counted, as are prompts either judge did not score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eft_eval.analysis._runs import LoadedRun
from eft_eval.errors import EFTEvalError
from eft_eval.parsing import parse_number
from eft_eval.stats import (
    BootstrapSettings,
    Estimate,
    agreement_estimate,
    confusion_matrix,
    kappa_estimate,
    spearman_estimate,
)


def agreement_analysis(
    run_a: LoadedRun,
    run_b: LoadedRun,
    judge: str,
    judge_b: str | None = None,
    threshold: float = 1.0,
    settings: BootstrapSettings | None = None,
) -> dict[str, Any]:
    """agreement.json's content: judge `judge` in run A against `judge_b` (default: the same name) in run B."""
    settings = settings or BootstrapSettings()
    # `score >= nan` is False for every score: a labelling of nothing, not a result.
    threshold = float(parse_number(threshold, "threshold", "agreement"))
    judge_b = judge_b or judge
    scores_a, scores_b = run_a.scores(judge), run_b.scores(judge_b)
    if run_a.path.resolve() == run_b.path.resolve() and scores_a.judge == scores_b.judge:
        raise EFTEvalError(f"agreement: {run_a.path} judge {judge!r} against itself; give another run or --judge-b")
    response_a, response_b = _responses(run_a), _responses(run_b)
    both = [p for p in run_a.prompt_ids if p in scores_a.scores and p in scores_b.scores]
    same = [p for p in both if response_a.get(p) == response_b.get(p)]
    a = np.asarray([scores_a.scores[p] for p in same])
    b = np.asarray([scores_b.scores[p] for p in same])
    label_a, label_b = list(a >= threshold), list(b >= threshold)
    kwargs = settings.kwargs()
    lengths = np.asarray([len(response_b[p]) for p in same], dtype=float)
    constant = bool(np.mean(label_b) >= 0.5) if same else False
    longer = list(lengths > np.median(lengths)) if same else []
    matrix = confusion_matrix(label_a, label_b)
    return {
        "judge_a": judge, "judge_b": judge_b, "run_a": str(run_a.path), "run_b": str(run_b.path),
        "threshold": threshold, "label": f"score >= {threshold:g}",
        "higher_is_better": _direction(run_b, judge_b),
        "n_paired": len(same),
        "excluded": {
            "a": {k: v for k, v in scores_a.counts().items() if k != "n_scored"},
            "b": {k: v for k, v in scores_b.counts().items() if k != "n_scored"},
            "different_response": len(both) - len(same),
            "scored_by_one_only": scores_a.n_scored + scores_b.n_scored - 2 * len(both),
        },
        "agreement": agreement_estimate(label_a, label_b, **kwargs).to_dict(),
        "kappa": kappa_estimate(label_a, label_b, **kwargs).to_dict(),
        "spearman": spearman_estimate(a, b, **kwargs).to_dict(),
        "label_rate_a": float(np.mean(label_a)) if same else None,
        "label_rate_b": float(np.mean(label_b)) if same else None,
        "confusion": {"rows": f"{judge} (A): score >= {threshold:g}, below",
                      "columns": f"{judge_b} (B): score >= {threshold:g}, below",
                      "matrix": matrix.as_rows(), "n": matrix.n},
        "baselines": {
            "constant_label": {
                "label": constant,
                "agreement": agreement_estimate([constant] * len(same), label_b, **kwargs).to_dict(),
                "kappa": kappa_estimate([constant] * len(same), label_b, **kwargs).to_dict(),
            },
            "longer_response": {
                "agreement": agreement_estimate(longer, label_b, **kwargs).to_dict(),
                "kappa": kappa_estimate(longer, label_b, **kwargs).to_dict(),
                "spearman": spearman_estimate(lengths, b, **kwargs).to_dict(),
            },
        },
        "bootstrap": {"n_resamples": settings.n_resamples, "seed": settings.seed,
                      "confidence_level": settings.confidence_level},
        "pairs": [{"prompt": p, "a": float(x), "b": float(y)} for p, x, y in zip(same, a, b)],
    }


def _direction(run: LoadedRun, judge: str) -> bool | None:
    try:
        return run.higher_is_better(judge)
    except EFTEvalError:
        return None  # only the figure's axis wording needs it


def _responses(run: LoadedRun) -> dict[str, str]:
    return {p: str(row.get("response", "")) for p, row in zip(run.prompt_ids, run.rows)}


def agreement_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One CSV row per (comparison, statistic)."""
    reference = f"{data['judge_b']} (B)"
    entries: Sequence[tuple[str, str, dict[str, Any]]] = [
        (f"{data['judge_a']} (A) vs {reference}", "agreement", data["agreement"]),
        (f"{data['judge_a']} (A) vs {reference}", "kappa", data["kappa"]),
        (f"{data['judge_a']} (A) vs {reference}", "spearman", data["spearman"]),
        (f"constant label vs {reference}", "agreement", data["baselines"]["constant_label"]["agreement"]),
        (f"constant label vs {reference}", "kappa", data["baselines"]["constant_label"]["kappa"]),
        (f"longer response vs {reference}", "agreement", data["baselines"]["longer_response"]["agreement"]),
        (f"longer response vs {reference}", "kappa", data["baselines"]["longer_response"]["kappa"]),
        (f"response length vs {reference}", "spearman", data["baselines"]["longer_response"]["spearman"]),
    ]
    return [{"comparison": who, "statistic": what, **{k: e.get(k) for k in
             ("value", "standard_error", "ci_low", "ci_high", "n", "confidence_level")}} for who, what, e in entries]


def estimate_text(entry: dict[str, Any]) -> str:
    """An estimate read back from JSON, printed the one way (`Estimate.format`)."""
    def number(key: str) -> float:
        return float("nan") if entry.get(key) is None else float(entry[key])

    return Estimate(number("value"), number("standard_error"), number("ci_low"), number("ci_high"),
                    int(entry.get("n") or 0), float(entry.get("confidence_level") or 0.95)).format()
