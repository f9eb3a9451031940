"""Human study: Potato annotation projects, judge-versus-human agreement, adjudication, reports.

Public names are re-exported lazily: `eft-eval --help` imports `eft_eval.study.commands`, and that
must not pull in scipy through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AnnotationImport": "annotations",
    "Answer": "annotations",
    "read_annotations": "annotations",
    "ItemLabel": "combine",
    "combine": "combine",
    "read_labels": "combine",
    "StudyItem": "project",
    "StudyManifest": "project",
    "StudyProject": "project",
    "load_project": "project",
    "write_project": "project",
    "PotatoServer": "potato",
    "serve": "potato",
    "BootstrapSettings": "results",
    "StudyResults": "results",
    "compute_results": "results",
    "write_report": "report",
    "JudgedSample": "selection",
    "SelectionConfig": "selection",
    "select_items": "selection",
    "LabelQuestions": "templates",
    "StudyTemplate": "templates",
    "load_template": "templates",
    "PrepareOptions": "workflow",
    "adjudicate": "workflow",
    "import_annotations": "workflow",
    "prepare": "workflow",
    "report": "workflow",
}

__all__ = [
    "AnnotationImport",
    "Answer",
    "BootstrapSettings",
    "ItemLabel",
    "JudgedSample",
    "LabelQuestions",
    "PotatoServer",
    "PrepareOptions",
    "SelectionConfig",
    "StudyItem",
    "StudyManifest",
    "StudyProject",
    "StudyResults",
    "StudyTemplate",
    "adjudicate",
    "combine",
    "compute_results",
    "import_annotations",
    "load_project",
    "load_template",
    "prepare",
    "read_annotations",
    "read_labels",
    "report",
    "select_items",
    "serve",
    "write_project",
    "write_report",
]

if TYPE_CHECKING:
    from eft_eval.study.annotations import AnnotationImport, Answer, read_annotations
    from eft_eval.study.combine import ItemLabel, combine, read_labels
    from eft_eval.study.potato import PotatoServer, serve
    from eft_eval.study.project import (
        StudyItem,
        StudyManifest,
        StudyProject,
        load_project,
        write_project,
    )
    from eft_eval.study.report import write_report
    from eft_eval.study.results import BootstrapSettings, StudyResults, compute_results
    from eft_eval.study.selection import JudgedSample, SelectionConfig, select_items
    from eft_eval.study.templates import LabelQuestions, StudyTemplate, load_template
    from eft_eval.study.workflow import (
        PrepareOptions,
        adjudicate,
        import_annotations,
        prepare,
        report,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
