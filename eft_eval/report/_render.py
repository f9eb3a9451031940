"""Assemble the report: figures, tables and one JSON block, rendered by Jinja2 into one file.

Safety: Jinja2 autoescapes every value; the only unescaped pieces are our own CSS/JS/SVG and the
JSON block, which is escaped for `<script type="application/json">` (no `<`, `>` or `&` survive,
so neither `</script>` nor `<!--` can end or change it). A Content-Security-Policy allows no
network at all and only the page's own script (by hash), so even a response that got past the
escaping could not run or load anything.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eft_eval.errors import EFTEvalError
from eft_eval.report import _figures as figures
from eft_eval.report._collect import ReportInputs, RunData, collect
from eft_eval.report._pairwise import pair_records, pairwise_sections
from eft_eval.report._runs import (
    JudgeInfo,
    config_view,
    judge_infos,
    known_judges,
    results_rows,
    sample_records,
)
from eft_eval.report._studies import study_sections
from eft_eval.runfolder import JUDGE_ALIASES
from eft_eval.stats import short_label

if TYPE_CHECKING:
    from eft_eval.study import StudyResults


@dataclass
class HumanStudy:
    """A human study to include: its project, optional adjudication, optional computed results."""

    project: Path
    adjudication: Path | None = None
    results: Any = None


@dataclass
class ReportOptions:
    title: str | None = None
    notes: Sequence[str] = ()
    """Plain-words paragraphs shown at the top (the demo says what its models and judge are)."""
    include_paths: Sequence[str] = ()
    human: Sequence[HumanStudy] = field(default_factory=list)


def script_json(data: Any) -> str:
    """JSON safe inside `<script type="application/json">`: `<`, `>`, `&` become \\u escapes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _template_text(name: str) -> str:
    return (resources.files("eft_eval.report") / "templates" / name).read_text(encoding="utf-8")


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("eft_eval.report", "templates"),
        autoescape=True,  # every value is escaped unless marked safe on purpose
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _title(inputs: ReportInputs, options: ReportOptions) -> str:
    if options.title:
        return options.title
    if inputs.studies:
        return f"Study report: {', '.join(str(s.sweep.get('study') or s.root.name) for s in inputs.studies)}"
    if inputs.runs:
        tasks = ", ".join(dict.fromkeys(r.task or "" for r in inputs.runs))
        return f"Run report: {tasks} ({len(inputs.runs)} run{'s' if len(inputs.runs) != 1 else ''})"
    if inputs.pairwise:
        return f"Pairwise report: {', '.join(item.root.name for item in inputs.pairwise)}"
    return "Human study: judge versus humans"


def _run_figures(inputs: ReportInputs, judges: list[JudgeInfo],
                 results: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per judge: the score distribution of each run and, for several runs, their means."""
    out = []
    for judge in judges:
        series = []
        for run in inputs.runs:
            scores = [float(j["score"]) for j in run.judgments(judge.name)
                      if j and j.get("status") == "scored" and j.get("score") is not None]
            series.append((short_label(run.label), scores))
        means = []
        for index, (run, rows) in enumerate(zip(inputs.runs, results)):
            row = next((r for r in rows if r["judge"] == judge.name), None)
            if row is not None:
                means.append((index, short_label(run.label), row["mean"], row["stderr"]))
        out.append({
            "judge": judge.to_dict() | {"axis_label": judge.axis_label},
            "distribution": figures.score_distribution(judge.name, judge.axis_label, series,
                                                       judge.integer, judge.score_range),
            "means": figures.means_by_run(judge.name, judge.axis_label, means) if len(means) > 1 else None,
            "boxes": len(series) > figures.BOX_PLOTS_PAST,
        })
    return out


def _run_title(run: RunData) -> str:
    """A run's full label and model spec: the tooltip of its short label (`stats.short_label`)."""
    model = run.run.get("model") or run.results.get("model") or (run.rows[0].get("model") if run.rows else None)
    return f"{run.label}\nmodel: {model}" if model else run.label


def build_context(inputs: ReportInputs, options: ReportOptions) -> dict[str, Any]:
    """Everything the template renders."""
    from eft_eval import __version__
    from eft_eval.report._human import human_section

    specs = known_judges(options.include_paths)
    renamed = {old: new for run in inputs.runs for old, new in run.renamed.items()}
    judges = judge_infos(inputs.runs, specs, renamed)
    by_name = {j.name: j for j in judges}

    def label(name: str) -> str:
        if name in by_name:
            return by_name[name].axis_label
        spec = specs.get(name)
        return spec.label if spec else name

    results = [results_rows(run, judges) for run in inputs.runs]
    runs = [
        {"id": index, "label": short_label(run.label), "title": _run_title(run), "task": run.task or "",
         "config": config_view(run), "results": rows, "n_samples": len(run.rows)}
        for index, (run, rows) in enumerate(zip(inputs.runs, results))
    ]
    samples, prompts = sample_records(inputs.runs, judges)
    tasks: dict[str, int] = {}
    for run in runs:
        tasks[str(run["task"])] = tasks.get(str(run["task"]), 0) + 1
    pairs = pair_records(inputs.pairwise)
    page_data = {
        "runs": [{"id": r["id"], "label": r["label"], "task": r["task"]} for r in runs],
        "judges": [j.to_dict() for j in judges],
        "aliases": {old: new for old, new in renamed.items()} | {
            old: new for old, new in JUDGE_ALIASES.items() if new in by_name},
        "samples": samples,
        "prompts": prompts,
        "pairs": pairs,
    }
    js = _template_text("report.js")
    return {
        "title": _title(inputs, options),
        "notes": list(options.notes),
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "judges": [j.to_dict() | {"axis_label": j.axis_label} for j in judges],
        "runs": runs,
        "run_figures": _run_figures(inputs, judges, results) if inputs.runs else [],
        "side_by_side": any(count > 1 for count in tasks.values()),
        "n_samples": len(samples),
        "studies": study_sections(inputs.studies, inputs.runs, label),
        "pairwise": pairwise_sections(inputs.pairwise, inputs.runs),
        "pair_groups": pairs["groups"],
        "human": [human_section(h.project,
                                h.adjudication, h.results) for h in [*options.human,
                                                                     *(HumanStudy(p, a)
                                                                       for p, a in inputs.human_projects)]],
        "css": _template_text("report.css"),
        "js": js,
        "script_hash": base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii"),
        "data_json": script_json(page_data),
    }


def render_report(inputs: ReportInputs, options: ReportOptions | None = None) -> str:
    """The report as one self-contained HTML document."""
    import markupsafe

    context = build_context(inputs, options or ReportOptions())
    for key in ("css", "js", "data_json"):
        context[key] = markupsafe.Markup(context[key])
    return str(_environment().get_template("report.html.j2").render(**context))


def human_study_page(results: StudyResults, title: str, project: Path, adjudication: Path | None) -> str:
    """The report page of one human study, from its `StudyResults` (`human-study report` writes it)."""
    return render_report(ReportInputs(), ReportOptions(title=title, human=[HumanStudy(project, adjudication, results)]))


def write_report(paths: Sequence[str | Path], out: str | Path, options: ReportOptions | None = None) -> Path:
    """Collect `paths` (run, sweep, analysis or human-study folders) and write the HTML to `out`."""
    from eft_eval.fileio import write_text_atomic

    out = Path(out)
    refuse_input_as_output(paths, out)
    _check_html_path(out)
    inputs = collect(paths, options.include_paths if options else ())
    write_text_atomic(out, render_report(inputs, options))
    return out


def refuse_input_as_output(paths: Sequence[str | Path], out: Path) -> None:
    """The report must not replace what it reads: a given file (or an alias of it), or inside a given
    folder anything but an HTML page (samples.jsonl, run.json, results.json, a sweep's files ...)."""
    target = out.resolve()
    for given in map(Path, paths):
        source = given.resolve()
        if source.is_file() and (source == target or (out.exists() and os.path.samefile(source, out))):
            raise EFTEvalError(f"--html {out}: is the input {given} itself; write the report to another path, "
                               "e.g. report.html")
        if source.is_dir() and target.is_relative_to(source) and target.suffix.lower() not in (".html", ".htm"):
            raise EFTEvalError(f"--html {out}: is inside the reported folder {given}, where only an .html page may "
                               f"be written; write the report to another path, e.g. {given / 'report.html'}")


def _check_html_path(out: Path) -> None:
    """`out` can become a file: not a folder, and no file where one of its folders should be."""
    if out.is_dir():
        raise EFTEvalError(f"{out}: is a folder; give the report a file name, e.g. {out / 'report.html'}")
    blocking = next((parent for parent in reversed(out.parents) if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise EFTEvalError(f"{out}: {blocking} is a file, not a folder; choose another path for the report")
    out.parent.mkdir(parents=True, exist_ok=True)


def write_folder_report(folder: str | Path, *, notes: Sequence[str] = (), include_paths: Sequence[str] = (),
                        title: str | None = None) -> Path:
    """`folder/report.html` for a run or sweep folder: what `run`, `sweep` and the demo call at their end."""
    return write_report([folder], Path(folder) / "report.html",
                        ReportOptions(title=title, notes=notes, include_paths=include_paths))


__all__ = ["HumanStudy", "ReportOptions", "build_context", "human_study_page", "refuse_input_as_output",
           "render_report", "script_json", "write_folder_report", "write_report"]
