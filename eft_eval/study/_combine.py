"""Combine several annotators per item into one "any factual error" label, and store it.

The label is the majority vote of the annotators' reduced answers. A tie (as many "error" as
"no error" votes) gives no label: the item is kept in `labels.jsonl` with `tie: true` and left
out of every agreement figure, and the report lists it, rather than breaking the tie by a rule
that would favour one side. Each answer is reduced from the number-of-errors question (count >= 1,
as in the paper) or, with `label_from="yes_no"`, from the yes/no question.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import iter_jsonl, refuse_overwrite, write_jsonl
from eft_eval.study._annotations import AnnotationImport, Answer
from eft_eval.study._project import StudyProject

LabelSource = Literal["count", "yes_no"]
LABEL_SOURCES: tuple[LabelSource, ...] = ("count", "yes_no")


def reduced(answer: Answer, label_from: LabelSource) -> bool:
    """One answer as "any factual error"."""
    return answer.any_error_by_count if label_from == "count" else answer.any_error_by_yes_no


@dataclass(frozen=True)
class ItemLabel:
    """The combined label of one item (one line of `labels.jsonl`)."""

    item_id: str
    label: bool | None
    """Majority "any factual error"; None on a tie or when nobody answered."""
    tie: bool
    error_votes: int
    no_error_votes: int
    label_from: LabelSource
    answers: list[dict[str, object]]
    """The individual answers: annotator, count_label, error_count, yes_no and both reductions."""

    @property
    def votes(self) -> int:
        return self.error_votes + self.no_error_votes


def combine(project: StudyProject, imported: AnnotationImport, label_from: LabelSource = "count") -> list[ItemLabel]:
    """One combined label per project item (in project order); unanswered items have none."""
    if label_from not in LABEL_SOURCES:
        raise EFTEvalError(f"label source must be one of {LABEL_SOURCES}, got {label_from!r}")
    by_item: dict[str, list[Answer]] = {item.item_id: [] for item in project.manifest.items}
    for answer in imported.answers:
        by_item[answer.item_id].append(answer)
    labels = []
    for item_id, answers in by_item.items():
        errors = sum(reduced(a, label_from) for a in answers)
        no_errors = len(answers) - errors
        tie = bool(answers) and errors == no_errors
        labels.append(
            ItemLabel(
                item_id=item_id,
                label=None if tie or not answers else errors > no_errors,
                tie=tie,
                error_votes=errors,
                no_error_votes=no_errors,
                label_from=label_from,
                answers=[asdict(a) for a in sorted(answers, key=lambda a: a.annotator)],
            )
        )
    return labels


def write_labels(project: StudyProject, labels: Iterable[ItemLabel], *, force: bool = False) -> None:
    """Write `labels.jsonl`; an existing file is replaced only with `force`."""
    refuse_overwrite(project.labels_file, force, "an imported labels file")
    write_jsonl(project.labels_file, [asdict(label) for label in labels])


def read_labels(project: StudyProject) -> list[ItemLabel]:
    """`labels.jsonl` of a project, checked against its items."""
    path = project.labels_file
    if not path.is_file():
        raise EFTEvalError(f"{project.path}: no {path.name}; run `eft-eval human-study import {project.path}` first")
    items = project.items_by_id
    labels = []
    for line, record in iter_jsonl(path):
        try:
            label = ItemLabel(**record)
        except TypeError as error:
            raise EFTEvalError(f"{path}:{line}: malformed label record ({error})") from None
        if label.item_id not in items:
            raise EFTEvalError(f"{path}:{line}: item {label.item_id!r} is not in the project {project.path}")
        labels.append(label)
    return labels
