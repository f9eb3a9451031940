"""`analyze calibrated`: a judge's mean corrected by human labels (prediction-powered inference).

For each judge: the judge alone (its mean over every scored item: what it says, bias included),
the humans alone (their mean over the labelled items) and PPI++ (`eft_eval.stats.ppi_mean_estimate`):
the judge's mean over the unlabelled items, corrected by the judge's error measured on the labelled
ones. With boolean labels ("any error") the judge's score is reduced to `score >= threshold` first.

The population is the run's items the judge scored: the labelled ones are those the labels file
names, the unlabelled ones the rest. Labelled items the judge did not score (abstained, failed,
missing) are left out and counted. PPI's interval is valid only when the labelled items are a
random sample of the population (`_labels.py` refuses the study's disagreement-only set).

Two runs, each with its own random labels, are compared by the difference of their estimates
(B - A); the runs and their labels are independent, so the variances add.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eft_eval.analysis._files import write_analysis
from eft_eval.analysis._labels import RANDOM_SAMPLE_NEEDED, HumanLabels, read_human_labels
from eft_eval.analysis._runs import LoadedRun, load_run
from eft_eval.errors import EFTEvalError
from eft_eval.parsing import parse_number
from eft_eval.stats import (
    DEFAULT_CONFIDENCE_LEVEL,
    CorrectedMean,
    Estimate,
    format_number,
    format_table,
    independent_difference,
    ppi_mean_estimate,
    short_label,
)

ESTIMATES = ("judge_only", "human_only", "ppi")


def _run_model(run: LoadedRun) -> str | None:
    return str(run.rows[0].get("model", "")) if run.rows else None


def _check_labels_in_run(run: LoadedRun, labels: HumanLabels) -> None:
    """Every label names an item of the run, and a study's items are the responses the run holds."""
    responses = {p: row.get("response") for p, row in zip(run.prompt_ids, run.rows)}
    for key, line in sorted(labels.lines.items(), key=lambda kv: kv[1]):
        doc_id = key.removeprefix("doc:")
        if key not in responses:
            raise EFTEvalError(f"{labels.path}:{line}: doc_id {doc_id} is not in the run {run.path}: the labels must "
                               "be for the run's own items")
        if key in labels.responses and labels.responses[key] != responses[key]:
            raise EFTEvalError(f"{labels.path}:{line}: item {labels.item_ids[key]} (doc_id {doc_id}) was labelled on "
                               f"another response than the one in {run.path}: these labels are for another run")


def corrected_judge(run: LoadedRun, labels: HumanLabels, judge: str, threshold: float,
                    confidence_level: float, lam: float | None = None) -> dict[str, Any]:
    """One judge's entry of calibrated.json: the three estimates, the counts, lambda, effective labels."""
    scores = run.scores(judge)
    boolean = labels.boolean

    def prediction(score: float) -> float:
        return float(score >= threshold) if boolean else score

    labelled = [p for p in run.prompt_ids if p in labels.labels and p in scores.scores]
    y = [labels.labels[p] for p in labelled]
    yhat = [prediction(scores.scores[p]) for p in labelled]
    unlabelled = [prediction(s) for p, s in scores.scores.items() if p not in labels.labels]
    if len(labelled) < 2:
        raise EFTEvalError(f"{labels.path}: {len(labelled)} labelled item(s) scored by judge {scores.judge!r} in "
                           f"{run.path}; PPI needs at least 2")
    result: CorrectedMean = ppi_mean_estimate(y, yhat, unlabelled, confidence_level, lam)
    return {
        "judge": scores.judge,
        "prediction": f"score >= {threshold:g}" if boolean else "score",
        **{name: getattr(result, name).to_dict() for name in ESTIMATES},
        "lambda": result.lam,
        "n_labels": result.n_labels,
        "n_items": result.n_items,
        "effective_labels": result.effective_labels,
        "excluded": {**{k: v for k, v in scores.counts().items() if k != "n_scored"},
                     "labelled_not_scored": sum(1 for p in labels.labels if p not in scores.scores)},
    }


def _one_run(run: LoadedRun, labels_path: str | Path, judges: Sequence[str], threshold: float | None,
             confidence_level: float, lam: float | None) -> dict[str, Any]:
    labels = read_human_labels(labels_path, _run_model(run))
    _check_labels_in_run(run, labels)
    cut = threshold if threshold is not None else (labels.threshold if labels.threshold is not None else 1.0)
    cut = float(parse_number(cut, "threshold", "calibrated"))
    return {
        "run": str(run.path),
        "labels": str(labels.path),
        "labels_source": labels.source,
        "label_kind": "any error (boolean)" if labels.boolean else "number",
        "threshold": cut if labels.boolean else None,
        "labels_excluded": {"without_label": labels.n_without_label, "other_model": labels.n_other_model},
        "judges": {judge: corrected_judge(run, labels, judge, cut, confidence_level, lam) for judge in judges},
    }


def _estimate(entry: Mapping[str, Any]) -> Estimate:
    def number(key: str) -> float:
        return float("nan") if entry.get(key) is None else float(entry[key])

    return Estimate(number("value"), number("standard_error"), number("ci_low"), number("ci_high"),
                    int(entry.get("n") or 0), float(entry.get("confidence_level") or DEFAULT_CONFIDENCE_LEVEL),
                    method=str(entry.get("method")))


def calibrated_analysis(
    run: LoadedRun,
    labels: str | Path,
    judges: Sequence[str],
    *,
    threshold: float | None = None,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
    lam: float | None = None,
    run_b: LoadedRun | None = None,
    labels_b: str | Path | None = None,
) -> dict[str, Any]:
    """calibrated.json's content (docs/formats.md). `threshold`: "any error" is score >= it (default: a
    study's error threshold, else 1); `lam`: the judge's fixed weight (default: tuned, PPI++)."""
    if not judges:
        raise EFTEvalError("calibrated: name at least one judge (--judge)")
    level = float(parse_number(confidence_level, "confidence_level", "calibrated", minimum=0, maximum=1,
                               exclusive_minimum=True, exclusive_maximum=True))
    if lam is not None:
        lam = float(parse_number(lam, "lambda", "calibrated", minimum=0, maximum=1))
    data = {**_one_run(run, labels, judges, threshold, level, lam),
            "confidence_level": level, "lambda": lam, "requires": RANDOM_SAMPLE_NEEDED}
    if (run_b is None) != (labels_b is None):
        raise EFTEvalError("calibrated: a second run needs its own labels: give both --run-b and --labels-b")
    if run_b is not None and labels_b is not None:
        if run_b.path.resolve() == run.path.resolve():
            raise EFTEvalError(f"calibrated: {run.path} is given as both runs; give another --run-b")
        if Path(labels_b).resolve() == Path(labels).resolve():
            raise EFTEvalError(f"calibrated: {labels} is given as the labels of both runs; each run needs labels of "
                               "its own items")
        other = _one_run(run_b, labels_b, judges, threshold, level, lam)
        data["run_b"] = other
        data["difference"] = {
            judge: {name: independent_difference(_estimate(data["judges"][judge][name]),
                                                 _estimate(other["judges"][judge][name])).to_dict()
                    for name in ESTIMATES}
            for judge in judges
        }
    data["rows"] = calibrated_rows(data)
    return data


def calibrated_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One CSV row per (run, judge, estimate)."""
    rows = []
    parts = [("a", data)] + ([("b", data["run_b"])] if "run_b" in data else [])
    for which, part in parts:
        for judge, entry in part["judges"].items():
            for name in ESTIMATES:
                rows.append({"run": part["run"], "which": which, "judge": judge, "estimate": name,
                             **{k: entry[name].get(k) for k in ("value", "standard_error", "ci_low", "ci_high", "n",
                                                                 "confidence_level", "method")},
                             "n_labels": entry["n_labels"], "effective_labels": entry["effective_labels"]})
    for judge, entry in (data.get("difference") or {}).items():
        for name in ESTIMATES:
            rows.append({"run": f"{data['run_b']['run']} - {data['run']}", "which": "b-a", "judge": judge,
                         "estimate": name, **{k: entry[name].get(k) for k in ("value", "standard_error", "ci_low",
                                                                                "ci_high", "n", "confidence_level",
                                                                                "method")}})
    return rows


def calibrated_table(data: Mapping[str, Any]) -> str:
    ppi = "PPI++" if data.get("lambda") is None else f"PPI (lambda {data['lambda']:g})"
    header = ["Run", "Judge", "Judge only", "Humans only", ppi,
              "Labels", "Items", "Effective labels"]
    rows = []
    parts = [data] + ([data["run_b"]] if "run_b" in data else [])
    for part in parts:
        for judge, entry in part["judges"].items():
            rows.append([short_label(part["run"]), judge,
                         *(_estimate(entry[name]).format() for name in ESTIMATES),
                         entry["n_labels"], entry["n_items"], format_number(entry["effective_labels"], 1)])
    for judge, entry in (data.get("difference") or {}).items():
        rows.append(["B - A", judge, *(_estimate(entry[name]).format() for name in ESTIMATES), "", "", ""])
    note = (f"Labels: {data['labels']} ({data['label_kind']}"
            + (f"; judge's label: score >= {data['threshold']:g}" if data.get("threshold") is not None else "")
            + f"). PPI is valid only if {data['requires']}.")
    return format_table(header, rows, right={5, 6, 7}) + "\n" + note


def analyze_calibrated(
    run: str | Path, labels: str | Path, judges: Sequence[str], output_dir: str | Path = "analysis", *,
    threshold: float | None = None, confidence_level: float = DEFAULT_CONFIDENCE_LEVEL, lam: float | None = None,
    run_b: str | Path | None = None, labels_b: str | Path | None = None, include_paths: Sequence[str] = (),
) -> dict[str, Any]:
    """Write OUT/calibrated.json and .csv; returns `{"kind", "data", "files", "table"}` as the other analyses."""
    loaded = load_run(run, None, include_paths)
    loaded_b = load_run(run_b, None, include_paths) if run_b is not None else None
    data = calibrated_analysis(loaded, labels, judges, threshold=threshold, confidence_level=confidence_level,
                               lam=lam, run_b=loaded_b, labels_b=labels_b)
    files = write_analysis(Path(output_dir), "calibrated", data, data["rows"])
    return {"kind": "calibrated", "data": data, "files": [str(p) for p in files], "table": calibrated_table(data)}


__all__ = ["analyze_calibrated", "calibrated_analysis", "calibrated_rows", "calibrated_table", "corrected_judge"]
