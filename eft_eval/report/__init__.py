"""The HTML report: one self-contained file for runs, sweeps/studies and the human study.

    from eft_eval.report import write_report, ReportOptions
    write_report(["runs/sweep"], "runs/sweep/report.html")

`eft-eval report DIR... --html OUT.html` calls it; `run`, `sweep`, `human-study report` (through
`human_study_page`) and the demo write `report.html` into their output folder with it. Templates,
style and script are files under `templates/` (shipped as package data), rendered by Jinja2 with
autoescaping; figures are matplotlib SVG; the samples are one JSON block the page's script renders
a page at a time. It is the project's one HTML renderer: the human study hands it its figures, and
`analyze tv` its measured tokens (`token_tv_page`).
"""

from eft_eval.report._collect import (
    ReportInputs,
    RunData,
    StudyData,
    collect,
    run_folders_in,
)
from eft_eval.report._render import (
    HumanStudy,
    ReportOptions,
    build_context,
    human_study_page,
    refuse_input_as_output,
    render_report,
    script_json,
    write_folder_report,
    write_report,
)
from eft_eval.report._token_tv import token_tv_page

REPORT_FILE = "report.html"

__all__ = [
    "REPORT_FILE",
    "HumanStudy",
    "ReportInputs",
    "ReportOptions",
    "RunData",
    "StudyData",
    "build_context",
    "collect",
    "human_study_page",
    "refuse_input_as_output",
    "render_report",
    "run_folders_in",
    "script_json",
    "token_tv_page",
    "write_folder_report",
    "write_report",
]
