"""Pairwise sections: a pairwise folder's results.json as win-rate tables and a figure, and its pairs
(both verdicts with their reasoning) as records for the page's pair browser.

The numbers are those `eft-eval pairwise` wrote (docs/formats.md, "Pairwise folders"); nothing is
recomputed here. A run the report also holds (found by the path pairwise.json records) is clickable:
its table row and its figure points filter the sample browser to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from eft_eval.report import _figures as figures
from eft_eval.report._collect import PairwiseData, RunData
from eft_eval.report._studies import fmt, match_run


def _estimate(data: Any) -> tuple[str, str]:
    """`0.62 ± 0.05` and `0.52 to 0.71` for an `Estimate.to_dict()`; `-` where undefined."""
    if not isinstance(data, dict) or not _finite(data.get("value")):
        return "-", "-"
    interval = (f"{fmt(data['ci_low'])} to {fmt(data['ci_high'])}"
                if _finite(data.get("ci_low")) and _finite(data.get("ci_high")) else "-")
    return fmt(data["value"], data.get("standard_error")), interval


def _score(data: Any, scale: str) -> tuple[str, str]:
    """A Bradley-Terry score: Elo points as whole numbers (`1120 ± 390`), logits as the other estimates."""
    if scale != "elo" or not isinstance(data, dict) or not _finite(data.get("value")):
        return _estimate(data)
    se, low, high = data.get("standard_error"), data.get("ci_low"), data.get("ci_high")
    text = f"{data['value']:.0f}" + (f" ± {se:.0f}" if _finite(se) else "")
    return text, (f"{low:.0f} to {high:.0f}" if _finite(low) and _finite(high) else "-")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _row(numbers: dict[str, Any], run: int | None, label: str, matched: dict[str, Any], other_only: str,
         ) -> dict[str, Any]:
    """One win-rate table row; `other_only` names the count of prompts only the other side answered."""
    win, win_ci = _estimate(numbers.get("win_rate"))
    lc, lc_ci = _estimate(numbers.get("length_controlled_win_rate"))
    flips, flips_ci = _estimate(numbers.get("position_inconsistency"))
    length = (numbers.get("length_difference") or {}).get("mean_tokens")
    return {
        "run": run, "label": label, "win": win, "win_ci": win_ci, "lc": lc, "lc_ci": lc_ci,
        "lc_note": numbers.get("length_controlled_note") or "",
        "length": "-" if not _finite(length) else f"{length:+.1f}", "inconsistency": flips,
        "inconsistency_ci": flips_ci,
        "wtl": f"{numbers.get('wins', 0)} / {numbers.get('ties', 0)} / {numbers.get('losses', 0)}",
        "compared": f"{numbers.get('n_compared', 0)} of {numbers.get('n_pairs', 0)}",
        "unmatched": int(matched.get("run_only") or 0) + int(matched.get(other_only) or 0),
    }


def _judge_table(name: str, entry: dict[str, Any], prompts: dict[str, Any], run_ids: dict[str, int | None],
                 index: int, round_robin: dict[str, Any] | None = None) -> dict[str, Any]:
    rows = [_row(numbers, run_ids.get(run), run, prompts.get(run) or {}, "reference_only")
            for run, numbers in (entry.get("runs") or {}).items()]
    # A round robin: every two runs against each other, unmatched counted as in `round_robin.pairs`.
    shared = {(c.get("run"), c.get("opponent")): c for c in (round_robin or {}).get("pairs") or []}
    between = [_row(numbers, run_ids.get(numbers.get("run")), f"{numbers.get('run')} vs {numbers.get('opponent')}",
                    shared.get((numbers.get("run"), numbers.get("opponent"))) or {}, "opponent_only")
               for numbers in entry.get("between_runs") or []]
    overall, overall_ci = _estimate(entry.get("position_inconsistency"))
    jury = entry.get("jury")
    if isinstance(jury, dict):  # a jury of judge models: who, and how far they agree on the verdicts
        alpha, alpha_ci = _estimate((jury.get("agreement") or {}).get("krippendorff_alpha"))
        jury_text = (f"jury {', '.join(map(str, jury.get('models') or []))} ({jury.get('aggregation')}); "
                     f"Krippendorff's alpha of their verdicts {alpha} ({alpha_ci})")
    else:
        jury_text = ""
    fit = entry.get("bradley_terry") or None
    ranking = []
    if isinstance(fit, dict):
        scores, wins = fit.get("scores") or {}, fit.get("win_rates") or {}
        for rank, model in enumerate(fit.get("ranking") or [], start=1):
            score, score_ci = _score(scores.get(model), str(fit.get("scale", "elo")))
            beat, _ = _estimate(wins.get(model))
            ranking.append({"rank": rank, "run": run_ids.get(model), "label": model, "score": score,
                            "score_ci": score_ci, "beat": beat, "anchor": model == fit.get("anchor")})
    figure_rows = [(run_ids.get(run), run, numbers.get("win_rate") or {},
                    numbers.get("length_controlled_win_rate") or {})
                   for run, numbers in (entry.get("runs") or {}).items()]
    return {"name": name, "order_rule": entry.get("order_rule"), "verdicts": entry.get("verdicts") or {},
            "inconsistency": overall, "inconsistency_ci": overall_ci, "rows": rows, "ranking": ranking,
            "between": between, "jury": jury_text,
            "scale": (fit or {}).get("scale", "elo"),
            "svg": figures.win_rates(f"pairwise-{index}-{name}", figure_rows)}


def pairwise_sections(items: Sequence[PairwiseData], runs: Sequence[RunData]) -> list[dict[str, Any]]:
    """One section per pairwise folder: per judge, the win-rate table, the Bradley-Terry ranking
    (several runs) and the win-rate figure."""
    sections = []
    for index, item in enumerate(items):
        paths = {str(r.get("label")): r.get("path") for r in item.record.get("runs") or []}
        reference = item.record.get("reference") or {}
        paths[str(reference.get("label"))] = reference.get("path")
        run_ids = {label: match_run(path, runs) for label, path in paths.items()}
        results = item.results
        prompts = results.get("prompts") or {}
        sections.append({
            "id": index, "root": str(item.root), "reference": str(reference.get("label") or results.get("reference")),
            "reference_run": run_ids.get(str(reference.get("label"))),
            "runs": [str(r.get("label")) for r in item.record.get("runs") or []],
            "finished": bool(results),
            "judges": [_judge_table(name, entry, prompts, run_ids, index, results.get("round_robin"))
                       for name, entry in (results.get("judges") or {}).items()],
            "n_pairs": len(item.pairs),
        })
    return sections


def _verdict(judgment: dict[str, Any]) -> list[Any]:
    """[status, verdict label, reason, error] of one order's judgment; a jury's label is each model's
    verdict and the jury's outcome for response A (a mean of verdicts is no verdict of its own)."""
    label = judgment.get("verdict")
    if label is None and judgment.get("models") and judgment.get("status") == "scored":
        label = (f"{fmt(judgment.get('score'))} for A (" + ", ".join(
            f"{model} {own.get('verdict') or own.get('status')}" for model, own in judgment["models"].items()) + ")")
    return [judgment.get("status"), label, judgment.get("reason") or "", judgment.get("error") or ""]


def pair_records(items: Sequence[PairwiseData]) -> dict[str, Any]:
    """The pair browser's data: every pair's two responses and, per judge, both verdicts with their
    reasoning and the combined outcome (from the run's view: 1 win, 0.5 tie, 0 loss). A round robin's
    two runs are one more comparison each (`between`: true; the other run stands as the reference)."""
    groups: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for item in items:
        judges = list((item.results.get("judges") or {}) or (item.record.get("judges") or []))
        reference = (item.record.get("reference") or {}).get("label") or item.results.get("reference")
        group, labels = len(groups), ", ".join(str(r.get("label")) for r in item.record.get("runs") or [])
        groups.append({"id": group, "reference": reference, "judges": judges, "root": item.root.name,
                       "label": f"{labels} vs {reference}", "between": False})
        rows += [_pair_row(group, pair) for pair in item.pairs]
        between: dict[tuple[Any, Any], int] = {}
        for pair in item.run_pairs:
            two = (pair.get("run"), pair.get("reference"))
            if two not in between:
                between[two] = len(groups)
                groups.append({"id": len(groups), "reference": two[1], "judges": judges, "root": item.root.name,
                               "label": f"{two[0]} vs {two[1]} (run vs run)", "between": True})
            rows.append(_pair_row(between[two], pair))
    return {"groups": groups, "rows": rows}


def _pair_row(group: int, pair: dict[str, Any]) -> dict[str, Any]:
    judged = {}
    for name, judgment in (pair.get("judgments") or {}).items():
        verdicts = judgment.get("verdicts") or {}
        judged[name] = [judgment.get("outcome"), judgment.get("consistent"),
                        _verdict(verdicts.get("first") or {}), _verdict(verdicts.get("swapped") or {})]
    return {"g": group, "r": pair.get("run"), "d": pair.get("doc_id"), "q": pair.get("query") or "",
            "a": pair.get("response") or "", "b": pair.get("reference_response") or "",
            "n": [pair.get("response_tokens"), pair.get("reference_tokens")], "j": judged}


__all__ = ["pair_records", "pairwise_sections"]
