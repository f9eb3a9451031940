"""The numbers of a human study: judge versus humans, and who is right on the disagreements.

Every estimate resamples items (`eft_eval.stats`), with one seed for the report.
Tied items (no human majority) are excluded from all figures and counted; so are disagreements
the experts tied on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from eft_eval.stats import (
    BootstrapSettings,
    ConfusionMatrix,
    Estimate,
    agreement_estimate,
    confusion_matrix,
    kappa_estimate,
    proportion_estimate,
)
from eft_eval.study._calibrated import CalibratedFigures, calibrated_figures
from eft_eval.study._combine import ItemLabel
from eft_eval.study._project import StudyProject


@dataclass(frozen=True)
class AnnotatorFigures:
    """One annotator's agreement with the judge, the other annotators and the gold."""

    annotator: str
    n_items: int
    agreement_with_judge: Estimate
    kappa_with_judge: Estimate
    agreement_with_others: Estimate
    """Against the majority of the *other* annotators (items where they have one)."""
    gold_accuracy: Estimate | None


@dataclass(frozen=True)
class JuryModelFigures:
    """One model of the judge's jury (or the jury itself) against the humans' majority label."""

    model: str
    """A model's name, or `JURY` for the jury's combined label."""
    n_items: int
    """Labelled items this model scored (an abstention or failure leaves the item out of its row)."""
    agreement: Estimate
    kappa: Estimate
    error_rate: Estimate
    """Share of those items this model labels "any factual error"."""
    agreement_with_jury: Estimate
    """Against the jury's label on the same items (1 for the jury's own row)."""


JURY = "jury"


@dataclass(frozen=True)
class GoldFigures:
    """Who matches the expert gold label on the adjudicated disagreements."""

    n_adjudicated: int
    """Disagreements with a gold label (the figures below are over these)."""
    n_gold_ties: int
    judge_matches_gold: Estimate
    humans_match_gold: Estimate
    tied_item_ids: list[str] = field(default_factory=list)
    n_disagreements: int = 0
    """Judge-human disagreements among the labelled items: every one was sent to the experts."""
    n_without_gold: int = 0
    """Disagreements without a gold label: the experts tied on them or did not answer them."""
    without_gold_item_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StudyResults:
    """Everything the report shows; `to_dict` is the JSON report."""

    judge: str
    error_threshold: float
    n_items: int
    n_labelled: int
    n_ties: int
    n_unannotated: int
    label_from: str
    agreement: Estimate
    kappa: Estimate
    confusion: ConfusionMatrix
    judge_error_rate: Estimate
    human_error_rate: Estimate
    answer_consistency: float
    """Share of answers whose count and yes/no questions reduce to the same label."""
    n_annotators: int
    annotators: list[AnnotatorFigures]
    gold: GoldFigures | None
    bootstrap: BootstrapSettings
    tied_item_ids: list[str] = field(default_factory=list)
    calibrated: CalibratedFigures | None = None
    """The error rate of every response the items were drawn from, corrected by the labels (PPI++)."""
    calibrated_unavailable: str | None = None
    """Why `calibrated` is None (the samples file is gone, ...)."""
    jury: list[JuryModelFigures] = field(default_factory=list)
    """A jury's judge: the jury's row, then each model's; [] for a judge of one model."""

    def to_dict(self) -> dict[str, Any]:
        def convert(value: Any) -> Any:
            if isinstance(value, Estimate):
                return value.to_dict()
            if isinstance(value, ConfusionMatrix):
                return {
                    "rows": "judge (error, no error)",
                    "columns": "humans (error, no error)",
                    "matrix": value.as_rows(),
                    "n": value.n,
                }
            if hasattr(value, "__dataclass_fields__"):
                return {k: convert(getattr(value, k)) for k in value.__dataclass_fields__}
            if isinstance(value, list):
                return [convert(v) for v in value]
            if isinstance(value, float) and math.isnan(value):
                return None  # JSON has no NaN
            return value

        data = convert(self)
        if not self.jury:  # a single-model judge's report.json is as before
            del data["jury"]
        return data


def _others_majority(answers_by_item: dict[str, dict[str, bool]], annotator: str, item_id: str) -> bool | None:
    others = [v for a, v in answers_by_item[item_id].items() if a != annotator]
    errors = sum(others)
    if not others or errors * 2 == len(others):
        return None
    return errors * 2 > len(others)


def _annotator_figures(
    project: StudyProject,
    labels: list[ItemLabel],
    gold: dict[str, bool],
    settings: BootstrapSettings,
) -> list[AnnotatorFigures]:
    items = project.items_by_id
    answers_by_item: dict[str, dict[str, bool]] = defaultdict(dict)
    for label in labels:
        for answer in label.answers:
            answers_by_item[label.item_id][str(answer["annotator"])] = bool(
                answer["any_error_by_count"] if label.label_from == "count" else answer["any_error_by_yes_no"]
            )
    by_annotator: dict[str, list[str]] = defaultdict(list)
    for item_id, answers in answers_by_item.items():
        for annotator in answers:
            by_annotator[annotator].append(item_id)
    figures = []
    for annotator, item_ids in sorted(by_annotator.items()):
        own = [answers_by_item[i][annotator] for i in item_ids]
        judge = [items[i].judge_label for i in item_ids]
        others = [(answers_by_item[i][annotator], _others_majority(answers_by_item, annotator, i)) for i in item_ids]
        pairs = [(mine, theirs) for mine, theirs in others if theirs is not None]
        gold_pairs = [(answers_by_item[i][annotator], gold[i]) for i in item_ids if i in gold]
        figures.append(
            AnnotatorFigures(
                annotator=annotator,
                n_items=len(item_ids),
                agreement_with_judge=agreement_estimate(own, judge, **settings.kwargs()),
                kappa_with_judge=kappa_estimate(own, judge, **settings.kwargs()),
                agreement_with_others=agreement_estimate([p[0] for p in pairs], [p[1] for p in pairs],
                                                         **settings.kwargs()),
                gold_accuracy=agreement_estimate([p[0] for p in gold_pairs], [p[1] for p in gold_pairs],
                                                 **settings.kwargs())
                if gold_pairs
                else None,
            )
        )
    return figures


def _gold_figures(project: StudyProject, labels: list[ItemLabel], gold_labels: list[ItemLabel],
                  settings: BootstrapSettings) -> GoldFigures:
    items = project.items_by_id
    human = {label.item_id: label.label for label in labels}
    resolved = [g for g in gold_labels if g.label is not None]
    judge_right = [items[g.item_id].judge_label == g.label for g in resolved]
    humans_right = [human[g.item_id] == g.label for g in resolved]
    disagreements = _disagreements(project, labels)
    gold_ids = {g.item_id for g in resolved}
    without = [item_id for item_id in disagreements if item_id not in gold_ids]
    return GoldFigures(
        n_adjudicated=len(resolved),
        n_gold_ties=sum(1 for g in gold_labels if g.tie),
        judge_matches_gold=proportion_estimate(judge_right, **settings.kwargs()),
        humans_match_gold=proportion_estimate(humans_right, **settings.kwargs()),
        tied_item_ids=[g.item_id for g in gold_labels if g.tie],
        n_disagreements=len(disagreements),
        n_without_gold=len(without),
        without_gold_item_ids=without,
    )


def _disagreements(project: StudyProject, labels: list[ItemLabel]) -> list[str]:
    """Ids of the labelled items where the human majority and the judge differ."""
    items = project.items_by_id
    return [label.item_id for label in labels
            if label.label is not None and bool(label.label) != items[label.item_id].judge_label]


def _jury_figures(project: StudyProject, labelled: list[ItemLabel],
                  settings: BootstrapSettings) -> list[JuryModelFigures]:
    """The jury's row and each model's, over the labelled items (each model: those it scored)."""
    items = project.items_by_id
    models = list(dict.fromkeys(model for label in labelled for model in items[label.item_id].jury_scores or {}))
    if not models:
        return []
    threshold = project.manifest.error_threshold
    rows = []
    for model in (JURY, *models):
        triples = []  # (this model's label, the humans', the jury's)
        for label in labelled:
            item = items[label.item_id]
            if model == JURY:
                own: bool | None = item.judge_label
            else:
                score = (item.jury_scores or {}).get(model)
                own = None if score is None else score >= threshold
            if own is not None:
                triples.append((own, bool(label.label), item.judge_label))
        mine, human, jury = ([t[i] for t in triples] for i in range(3))
        rows.append(JuryModelFigures(
            model=model,
            n_items=len(triples),
            agreement=agreement_estimate(mine, human, **settings.kwargs()),
            kappa=kappa_estimate(mine, human, **settings.kwargs()),
            error_rate=proportion_estimate(mine, **settings.kwargs()),
            agreement_with_jury=agreement_estimate(mine, jury, **settings.kwargs()),
        ))
    return rows


def compute_results(
    project: StudyProject,
    labels: list[ItemLabel],
    gold_labels: list[ItemLabel] | None = None,
    settings: BootstrapSettings | None = None,
) -> StudyResults:
    """All report figures for an annotation project, its labels and (optionally) gold labels."""
    settings = settings or BootstrapSettings()
    items = project.items_by_id
    labelled = [label for label in labels if label.label is not None]
    judge = [items[label.item_id].judge_label for label in labelled]
    human = [bool(label.label) for label in labelled]
    all_answers = [a for label in labels for a in label.answers]
    annotators = {str(a["annotator"]) for a in all_answers}
    gold = {g.item_id: bool(g.label) for g in gold_labels or [] if g.label is not None}
    label_from = labels[0].label_from if labels else "count"
    per_annotator = len(annotators) > 1
    calibrated, unavailable = calibrated_figures(project, labels, settings.confidence_level)
    return StudyResults(
        judge=project.manifest.judge,
        error_threshold=project.manifest.error_threshold,
        n_items=len(project.manifest.items),
        n_labelled=len(labelled),
        n_ties=sum(1 for label in labels if label.tie),
        n_unannotated=sum(1 for label in labels if not label.answers),
        label_from=label_from,
        agreement=agreement_estimate(judge, human, **settings.kwargs()),
        kappa=kappa_estimate(judge, human, **settings.kwargs()),
        confusion=confusion_matrix(judge, human),
        judge_error_rate=proportion_estimate(judge, **settings.kwargs()),
        human_error_rate=proportion_estimate(human, **settings.kwargs()),
        answer_consistency=sum(a["any_error_by_count"] == a["any_error_by_yes_no"]
                               for a in all_answers) / len(all_answers)
        if all_answers
        else float("nan"),
        n_annotators=len(annotators),
        annotators=_annotator_figures(project, labels, gold, settings) if per_annotator else [],
        gold=_gold_figures(project, labels, gold_labels, settings) if gold_labels is not None else None,
        bootstrap=settings,
        tied_item_ids=[label.item_id for label in labels if label.tie],
        calibrated=calibrated,
        calibrated_unavailable=unavailable,
        jury=_jury_figures(project, labelled, settings),
    )

