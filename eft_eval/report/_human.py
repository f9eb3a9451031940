"""The human-study section: agreement with standard errors, the confusion matrix, per-annotator
figures, and every judge-versus-human disagreement with the judge's reasoning, each annotator's
answers and the expert gold label.

The judge's reasoning is not in the study project (annotators must never see it): it is read back
from the samples file the items were drawn from, by line number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eft_eval.fileio import iter_jsonl


def _reasons(samples: Path, judge: str, lines: set[int]) -> dict[int, str]:
    """line -> the judge's reasoning for those lines of `samples` (empty when the file is gone)."""
    if not samples.is_file():
        return {}
    found = {}
    for line, record in iter_jsonl(samples):
        if line in lines:
            judgment = (record.get("judgments") or {}).get(judge) or {}
            found[line] = str(judgment.get("reason") or "")
    return found


def human_section(project_dir: Path, adjudication_dir: Path | None = None, results: Any = None) -> dict[str, Any]:
    """Everything the page shows of one human study; `results` (StudyResults) is computed if None."""
    from eft_eval import study

    project = study.load_project(project_dir)
    labels = study.read_labels(project)
    gold_labels = study.load_gold(adjudication_dir, project)[1] if adjudication_dir is not None else None
    if results is None:
        results = study.compute_results(project, labels, gold_labels)
    items = project.items_by_id
    manifest = project.manifest
    gold = {g.item_id: g for g in gold_labels or []}
    disagreeing = [label for label in labels if label.label is not None
                   and label.label != items[label.item_id].judge_label]
    samples = Path(str(manifest.selection.get("samples", "")))
    lines = {int(items[label.item_id].source.get("line", -1)) for label in disagreeing}
    reasons = _reasons(samples, manifest.judge, lines)

    def says(value: bool | None) -> str:
        return "-" if value is None else ("error" if value else "no error")

    rows = []
    for label in disagreeing:
        item = items[label.item_id]
        verdict = gold.get(label.item_id)
        rows.append({
            "item_id": label.item_id, "query": item.query, "response": item.response,
            "judge_score": item.judge_score, "judge_label": says(item.judge_label),
            "judge_reason": reasons.get(int(item.source.get("line", -1)),
                                        f"(reasoning not found: {samples} line {item.source.get('line')})"),
            "human_label": says(label.label), "votes": f"{label.error_votes} error / {label.no_error_votes} no error",
            "answers": [(str(a.get("annotator")), str(a.get("count_label")), str(a.get("yes_no")))
                        for a in label.answers],
            "gold": ("experts tied" if verdict.tie else says(verdict.label)) if verdict is not None else
                    ("not adjudicated" if gold_labels is not None else "no adjudication given"),
            "source": item.source,
        })
    annotators = [(a.annotator, a.agreement_with_judge.to_dict(), a.agreement_with_others.to_dict())
                  for a in results.annotators]
    from eft_eval.report._figures import annotator_agreement

    return {
        "project": str(project.path),
        "judge": manifest.judge,
        "method_note": study.method_note(results),
        "summary_rows": study.summary_rows(results),
        "confusion_svg": study.confusion_svg(results.confusion),
        "confusion": results.confusion.as_rows(),
        "jury_header": study.JURY_HEADER,
        "jury_rows": study.jury_rows(results),
        "annotator_header": study.ANNOTATOR_HEADER,
        "annotator_rows": study.annotator_rows(results),
        "annotator_svg": annotator_agreement(annotators) if annotators else None,
        "disagreements": rows,
        "n_items": results.n_items,
        "ties": list(results.tied_item_ids),
    }


__all__ = ["human_section"]
