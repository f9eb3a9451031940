"""The numbers of a pairwise folder, from its pairs.jsonl rows: results.json's `judges` (docs/formats.md).

Per judge and run: the win rate (ties count half; prompts resampled, so each pair's two responses
move together), the length-controlled win rate (AlpacaEval 2's logistic model read at zero length
difference; undefined, NaN, when a compared pair lacks `response_tokens`), the raw length
difference beside it, and the position inconsistency (the share of pairs whose verdict flips with
the order). Per judge: the position inconsistency over every pair, and with several runs,
Bradley-Terry scores of the runs and the reference (anchored at the reference, prompts resampled);
with a round robin, also per two runs their numbers against each other (`between_runs`), and
Bradley-Terry fitted on those comparisons too.
Every estimate is `stats.Estimate.to_dict()`. A pair without a verdict in either order (failed or
abstained) has no outcome: it is counted in `n_no_verdict`, never scored as a tie.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from eft_eval.judging import JudgeSpec
from eft_eval.stats import BootstrapSettings, Estimate


def summarize(rows: Sequence[dict[str, Any]], runs: Sequence[str], reference: str, specs: Sequence[JudgeSpec],
              bootstrap: BootstrapSettings, between: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """results.json's `judges`: per judge, its settings, per-run numbers and overall figures.

    `between`: the round robin's rows (`run` against the other run in `reference`), or None.
    """
    from eft_eval.stats import bradley_terry

    summary: dict[str, Any] = {}
    for spec in specs:
        judged = [(row, row["judgments"][spec.name]) for row in rows]
        both = [(row, j) for row, j in judged if j["outcome"] is not None]
        per_run = {run: _run_numbers([(row, j) for row, j in judged if row["run"] == run], spec, bootstrap)
                   for run in runs}
        entry: dict[str, Any] = {
            "verdicts": dict(spec.verdicts),
            "order_rule": spec.order_rule,
            "position_inconsistency": _inconsistency(both, spec, bootstrap),
            "runs": per_run,
            "bradley_terry": None,
        }
        jury = _jury_agreement([j for _, j in judged] + [row["judgments"][spec.name] for row in between or []],
                               bootstrap)
        if jury is not None:  # a jury (`--judge-model a,b,c`): how much its models agree on the verdicts
            entry["jury"] = jury
        among = [(row, row["judgments"][spec.name]) for row in between or []]
        if between is not None:
            entry["between_runs"] = []
            for index, first in enumerate(runs):
                for second in runs[index + 1:]:
                    judged_pair = [(row, j) for row, j in among if row["run"] == first and row["reference"] == second]
                    if judged_pair:  # two runs without a shared prompt: `round_robin.pairs` says so
                        entry["between_runs"].append({"run": first, "opponent": second,
                                                      **_run_numbers(judged_pair, spec, bootstrap)})
        # Every comparison with an outcome, against the reference and (round robin) between runs;
        # one bootstrap group per prompt, so all of a prompt's comparisons move together.
        fitted = both + [(row, j) for row, j in among if j["outcome"] is not None]
        if len(runs) > 1 and both:  # the reference, the anchor, must be among the compared
            comparisons = [(row["run"], row["reference"], float(j["outcome"])) for row, j in fitted]
            fit = bradley_terry(comparisons, groups=[_group(row["doc_id"]) for row, _ in fitted], anchor=reference,
                                **bootstrap.kwargs())
            entry["bradley_terry"] = fit.to_dict()
        summary[spec.name] = entry
    return summary


def _jury_agreement(judged: Sequence[dict[str, Any]], bootstrap: BootstrapSettings) -> dict[str, Any] | None:
    """The jury's models and Krippendorff's alpha of their verdicts: one item per order of each pair,
    each model's outcome for response A (ordinal: B < tie < A, graded verdicts in their order);
    None without a jury. Undefined (NaN) when every model gave one verdict throughout."""
    from eft_eval.stats import krippendorff_alpha_estimate

    asked = [judgment["verdicts"][order] for judgment in judged for order in ("first", "swapped")]
    juries = [one for one in asked if one.get("models")]
    if not juries:
        return None
    models = list(dict.fromkeys(model for one in juries for model in one["models"]))
    matrix = [[float(own["score"]) if (own := (one.get("models") or {}).get(model)) is not None
               and own.get("status") == "scored" and own.get("score") is not None else math.nan for one in asked]
              for model in models]
    alpha = krippendorff_alpha_estimate(matrix, "ordinal", seed=bootstrap.seed,
                                        confidence_level=bootstrap.confidence_level)
    return {"aggregation": juries[0].get("jury_aggregation"), "models": models,
            "agreement": {"krippendorff_alpha": alpha.to_dict(), "level": "ordinal", "n_items": len(asked)}}


def _inconsistency(both: Sequence[tuple[dict[str, Any], dict[str, Any]]], spec: JudgeSpec,
                   bootstrap: BootstrapSettings) -> dict[str, Any]:
    """The share of pairs whose verdict changes with the order; under the `side` rule, only a change of
    side (a graded judge's `A>>B` against `A>B` agrees), as the pairs' `consistent` says."""
    from eft_eval.stats import position_inconsistency

    return position_inconsistency([j["first"] for _, j in both], [j["swapped"] for _, j in both],
                                  by_side=spec.order_rule == "side", **bootstrap.kwargs()).to_dict()


def _run_numbers(judged: Sequence[tuple[dict[str, Any], dict[str, Any]]], spec: JudgeSpec,
                 bootstrap: BootstrapSettings) -> dict[str, Any]:
    from eft_eval.stats import length_controlled_win_rate, win_rate

    both = [(row, j) for row, j in judged if j["outcome"] is not None]
    outcomes = [float(j["outcome"]) for _, j in both]
    differences = [row["length_difference"] for row, _ in both]
    lengths_known = all(d is not None for d in differences)
    if lengths_known:
        controlled = length_controlled_win_rate(outcomes, differences, **bootstrap.kwargs())
    else:
        controlled = _undefined(len(outcomes), bootstrap)
    known = [float(d) for d in differences if d is not None]
    return {
        "n_pairs": len(judged),
        "n_compared": len(both),
        "n_no_verdict": len(judged) - len(both),
        "wins": sum(1 for o in outcomes if o > 0.5),
        "ties": sum(1 for o in outcomes if o == 0.5),
        "losses": sum(1 for o in outcomes if o < 0.5),
        "n_inconsistent": sum(1 for _, j in both if not j["consistent"]),
        "win_rate": win_rate(outcomes, **bootstrap.kwargs()).to_dict(),
        "length_controlled_win_rate": controlled.to_dict(),
        "length_controlled_note": None if lengths_known else (
            f"undefined: {sum(d is None for d in differences)} of {len(differences)} compared pairs have no "
            "response_tokens (runs written before lengths were recorded)"),
        "length_difference": {"mean_tokens": sum(known) / len(known) if known else None, "n": len(known)},
        "position_inconsistency": _inconsistency(both, spec, bootstrap),
    }


def _undefined(n: int, bootstrap: BootstrapSettings) -> Estimate:
    nan = math.nan
    return Estimate(nan, nan, nan, nan, n, bootstrap.confidence_level, 0, "undefined-no-lengths")


def _group(doc_id: Any) -> str:
    """One bootstrap group per prompt (a doc_id 1 and "1" stay apart)."""
    return f"{type(doc_id).__name__}:{doc_id}"
