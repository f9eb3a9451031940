"""Human study: Potato annotation projects, judge-versus-human agreement, adjudication, reports.

Public names are re-exported lazily: `eft-eval --help` imports `eft_eval.study.commands`, and that
must not pull in scipy through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "load_gold": "_adjudication",
    "CalibratedFigures": "_calibrated",
    "AnnotationImport": "_annotations",
    "Answer": "_annotations",
    "read_annotations": "_annotations",
    "ItemLabel": "_combine",
    "combine": "_combine",
    "read_labels": "_combine",
    "StudyItem": "_project",
    "StudyManifest": "_project",
    "StudyProject": "_project",
    "load_project": "_project",
    "write_project": "_project",
    "PotatoServer": "_potato",
    "serve": "_potato",
    "stop_process_group": "_potato",
    "BootstrapSettings": "_results",
    "StudyResults": "_results",
    "compute_results": "_results",
    "StudyPage": "_report",
    "annotator_rows": "_report",
    "calibrated_rows": "_report",
    "confusion_svg": "_report",
    "method_note": "_report",
    "summary_rows": "_report",
    "write_report": "_report",
    "ANNOTATOR_HEADER": "_report",
    "JURY_HEADER": "_report",
    "jury_rows": "_report",
    "JudgedSample": "_selection",
    "SelectionConfig": "_selection",
    "select_items": "_selection",
    "LabelQuestions": "_templates",
    "StudyTemplate": "_templates",
    "load_template": "_templates",
    "PrepareOptions": "_workflow",
    "adjudicate": "_workflow",
    "import_annotations": "_workflow",
    "prepare": "_workflow",
    "report": "_workflow",
}

__all__ = [
    "ANNOTATOR_HEADER",
    "JURY_HEADER",
    "AnnotationImport",
    "Answer",
    "BootstrapSettings",
    "CalibratedFigures",
    "ItemLabel",
    "JudgedSample",
    "LabelQuestions",
    "PotatoServer",
    "PrepareOptions",
    "SelectionConfig",
    "StudyItem",
    "StudyManifest",
    "StudyPage",
    "StudyProject",
    "StudyResults",
    "StudyTemplate",
    "adjudicate",
    "annotator_rows",
    "calibrated_rows",
    "combine",
    "compute_results",
    "confusion_svg",
    "import_annotations",
    "jury_rows",
    "load_gold",
    "load_project",
    "load_template",
    "method_note",
    "prepare",
    "read_annotations",
    "read_labels",
    "report",
    "select_items",
    "serve",
    "stop_process_group",
    "summary_rows",
    "write_project",
    "write_report",
]

if TYPE_CHECKING:
    from eft_eval.study._adjudication import load_gold
    from eft_eval.study._annotations import AnnotationImport, Answer, read_annotations
    from eft_eval.study._calibrated import CalibratedFigures
    from eft_eval.study._combine import ItemLabel, combine, read_labels
    from eft_eval.study._potato import PotatoServer, serve, stop_process_group
    from eft_eval.study._project import (
        StudyItem,
        StudyManifest,
        StudyProject,
        load_project,
        write_project,
    )
    from eft_eval.study._report import (
        ANNOTATOR_HEADER,
        JURY_HEADER,
        StudyPage,
        annotator_rows,
        calibrated_rows,
        confusion_svg,
        jury_rows,
        method_note,
        summary_rows,
        write_report,
    )
    from eft_eval.study._results import BootstrapSettings, StudyResults, compute_results
    from eft_eval.study._selection import JudgedSample, SelectionConfig, select_items
    from eft_eval.study._templates import LabelQuestions, StudyTemplate, load_template
    from eft_eval.study._workflow import (
        PrepareOptions,
        adjudicate,
        import_annotations,
        prepare,
        report,
    )


__getattr__ = lazy_exports(__name__, _EXPORTS)
