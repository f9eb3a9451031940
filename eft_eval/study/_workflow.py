"""The five steps of a human study as library calls; the CLI (`commands.py`) only parses flags.

prepare -> (annotators work in Potato) -> import -> adjudicate -> (experts work) -> import -> report
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import parse_number
from eft_eval.stats import BootstrapSettings
from eft_eval.study._adjudication import build_adjudication_project, load_gold
from eft_eval.study._annotations import AnnotationImport, read_annotations
from eft_eval.study._combine import (
    ItemLabel,
    LabelSource,
    combine,
    read_labels,
    write_labels,
)
from eft_eval.study._project import (
    StudyItem,
    StudyManifest,
    StudyProject,
    load_project,
    write_project,
)
from eft_eval.study._report import ReportFiles, StudyPage, write_report
from eft_eval.study._results import StudyResults, compute_results
from eft_eval.study._selection import (
    Selection,
    SelectionConfig,
    read_judged_samples,
    select_items,
)
from eft_eval.study._templates import (
    DEFAULT_ADJUDICATION_TEMPLATE,
    DEFAULT_TEMPLATE,
    load_template,
)


@dataclass(frozen=True)
class PrepareOptions:
    """Options of `prepare` beyond the item selection."""

    annotators_per_item: int = 1
    items_per_annotator: int | None = None
    """Potato's per-annotator quota; default: every item."""
    template: str = DEFAULT_TEMPLATE
    include_paths: tuple[str, ...] = ()
    force: bool = False

    def __post_init__(self) -> None:
        parse_number(self.annotators_per_item, "annotators_per_item", "human-study prepare", integer=True, minimum=1)
        if self.items_per_annotator is not None:
            parse_number(self.items_per_annotator, "items_per_annotator", "human-study prepare", integer=True,
                         minimum=1)


def _items(selection: Selection, threshold: float) -> list[StudyItem]:
    # Ids say nothing about model or judge verdict: annotators can read them in the page.
    width = max(4, len(str(len(selection.items))))
    return [
        StudyItem(
            item_id=f"item-{k:0{width}d}",
            query=sample.query,
            response=sample.response,
            judge_label=bool(sample.judge_label(threshold)),
            judge_score=sample.judge_score,
            source={"line": sample.source_line, "doc_id": sample.doc_id, "task": sample.task, "model": sample.model},
            jury_scores=dict(sample.jury_scores) or None,
        )
        for k, sample in enumerate(selection.items, start=1)
    ]


def prepare(samples: Path, out: Path, selection_config: SelectionConfig,
            options: PrepareOptions | None = None) -> StudyProject:
    """Select items from judged samples and write the Potato project for them."""
    options = options or PrepareOptions()
    template = load_template(options.template, list(options.include_paths))
    selection = select_items(read_judged_samples(samples, selection_config.judge), selection_config, samples)
    manifest = StudyManifest(
        kind="annotation",
        template=template.name,
        questions=template.questions,
        items=_items(selection, selection_config.error_threshold),
        annotators_per_item=options.annotators_per_item,
        judge=selection_config.judge,
        error_threshold=selection_config.error_threshold,
        seed=selection_config.seed,
        selection={
            "samples": str(samples.resolve()),
            "n": selection_config.n,
            "model": selection.model,
            "target_error_rate": selection_config.target_error_rate,
            "excluded": selection.excluded,
            "model_error_rates": selection.model_error_rates,
        },
    )
    return write_project(out, template, manifest, items_per_annotator=options.items_per_annotator, force=options.force,
                         sources=(samples,))


def import_annotations(
    project_dir: Path, *, label_from: LabelSource = "count", allow_partial: bool = False, force: bool = False
) -> tuple[AnnotationImport, list[ItemLabel]]:
    """Read Potato's output, combine annotators per item and write `labels.jsonl`."""
    project = load_project(project_dir)
    imported = read_annotations(project, allow_partial=allow_partial)
    labels = combine(project, imported, label_from)
    write_labels(project, labels, force=force)
    return imported, labels


def adjudicate(
    project_dir: Path,
    out: Path,
    *,
    annotators_per_item: int = 1,
    template: str = DEFAULT_ADJUDICATION_TEMPLATE,
    include_paths: tuple[str, ...] = (),
    force: bool = False,
) -> StudyProject:
    """Write the adjudication project holding the judge-versus-human disagreements."""
    return build_adjudication_project(
        load_project(project_dir),
        out,
        load_template(template, list(include_paths)),
        annotators_per_item=annotators_per_item,
        force=force,
    )


def report(
    project_dir: Path,
    out: Path,
    *,
    adjudication_dir: Path | None = None,
    settings: BootstrapSettings | None = None,
    force: bool = False,
    page: StudyPage | None = None,
) -> tuple[StudyResults, ReportFiles]:
    """Compute the study's figures and write the report files (`page` renders report.html)."""
    project = load_project(project_dir)
    if project.manifest.kind != "annotation":
        raise EFTEvalError(f"{project_dir}: is an adjudication project; report on the annotation project and pass this "
                           "one as --adjudication")
    labels = read_labels(project)
    gold = load_gold(adjudication_dir, project)[1] if adjudication_dir is not None else None
    results = compute_results(project, labels, gold, settings)
    extra = {
        "project": str(project.path.resolve()),
        "adjudication": str(adjudication_dir.resolve()) if adjudication_dir else None,
    }
    return results, write_report(results, out, extra=extra, force=force, page=page)
