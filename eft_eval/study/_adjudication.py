"""The second Potato project: only the judge-versus-human disagreements, for expert gold labels.

Experts see query and response only, never who said what, so the earlier labels cannot steer
them. Tied items have no human label to disagree with and are not sent to adjudication (the
report lists them). Importing the adjudication project (`eft-eval human-study import`) records
the gold labels in its own `labels.jsonl`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from eft_eval.errors import EFTEvalError
from eft_eval.study._combine import ItemLabel, read_labels
from eft_eval.study._project import (
    StudyItem,
    StudyManifest,
    StudyProject,
    load_project,
    write_project,
)
from eft_eval.study._templates import StudyTemplate


def disagreements(project: StudyProject, labels: list[ItemLabel]) -> list[StudyItem]:
    """Items whose majority human label differs from the judge's, with that human label attached."""
    items = project.items_by_id
    return [
        dataclasses.replace(items[label.item_id], human_label=label.label)
        for label in labels
        if label.label is not None and label.label != items[label.item_id].judge_label
    ]


def build_adjudication_project(
    project: StudyProject,
    out: Path,
    template: StudyTemplate,
    *,
    annotators_per_item: int = 1,
    force: bool = False,
) -> StudyProject:
    """Write the adjudication project for `project`'s imported labels under `out`."""
    if project.manifest.kind != "annotation":
        raise EFTEvalError(f"{project.path}: is an adjudication project already; adjudicate the annotation "
                           "project it came from")
    items = disagreements(project, read_labels(project))
    if not items:
        raise EFTEvalError(f"{project.labels_file}: the judge and the annotators agree on every labelled item; "
                           "nothing to adjudicate")
    manifest = StudyManifest(
        kind="adjudication",
        template=template.name,
        questions=template.questions,
        items=items,
        annotators_per_item=annotators_per_item,
        judge=project.manifest.judge,
        error_threshold=project.manifest.error_threshold,
        seed=project.manifest.seed,
        selection={"from": "disagreements", "n": len(items)},
        parent=str(project.path.resolve()),
    )
    return write_project(out, template, manifest, force=force, sources=(project.path,))


def load_gold(adjudication_dir: Path, project: StudyProject) -> tuple[StudyProject, list[ItemLabel]]:
    """An adjudication project and its imported gold labels, checked against `project`.

    The adjudicated items must still be disagreements under the project's current labels;
    otherwise the labels were re-imported since and the gold answers a different question.
    """
    adjudication = load_project(adjudication_dir)
    if adjudication.manifest.kind != "adjudication":
        raise EFTEvalError(f"{adjudication_dir}: not an adjudication project (built by `eft-eval "
                           "human-study adjudicate`)")
    gold = read_labels(adjudication)
    current = {label.item_id: label.label for label in read_labels(project)}
    items = project.items_by_id
    for item in adjudication.manifest.items:
        if item.item_id not in items:
            raise EFTEvalError(f"{adjudication.manifest_file}: item {item.item_id!r} is not in the project "
                               f"{project.path}")
        if current.get(item.item_id) != item.human_label:
            raise EFTEvalError(
                f"{project.labels_file}: item {item.item_id!r} has human label {current.get(item.item_id)} now but "
                f"{item.human_label} when {adjudication_dir} was built; rebuild the adjudication project"
            )
    return adjudication, gold
