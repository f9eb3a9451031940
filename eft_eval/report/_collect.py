"""Find what a report shows in the folders it is given: runs, study analyses, human studies.

A folder may be a run folder (`samples.jsonl`), a sweep folder (`sweep.json`, `runs/<label>/` run
folders, the analyses' `frontier.json`, `scaling.json`, `top_p.json`, ... in `analysis/` or beside them), an
analysis output folder alone, or a human-study project (`study.json` + `data/items.jsonl`).
A bare `samples.jsonl` file is a run of its own. Nothing here draws or renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import iter_jsonl, read_json_object
from eft_eval.pipeline._outputs import RESULTS_FILE, RUN_FILE, SAMPLES_FILE

SWEEP_FILE = "sweep.json"
ANALYSIS_FILES = ("frontier", "scaling", "top_p", "compare", "agreement")
"""`<name>.json` files written by `eft-eval analyze` / `sweep` (docs/formats.md)."""


@dataclass
class RunData:
    """One run folder as read from disk."""

    root: Path
    label: str
    run: dict[str, Any]
    """run.json ({} for a bare samples file)."""
    results: dict[str, Any]
    """results.json ({} when missing: the report summarizes the samples itself)."""
    samples: list[dict[str, Any]]


@dataclass
class StudyData:
    """The analysis outputs found in one folder, by analysis name."""

    root: Path
    analyses: dict[str, dict[str, Any]]
    sweep: dict[str, Any] = field(default_factory=dict)
    """`sweep.json` when the folder is a sweep's: the study's name, what it is about, its points."""


@dataclass
class ReportInputs:
    runs: list[RunData] = field(default_factory=list)
    studies: list[StudyData] = field(default_factory=list)
    human_projects: list[tuple[Path, Path | None]] = field(default_factory=list)
    """(annotation project, adjudication project or None)."""


def is_run_folder(path: Path) -> bool:
    return (path / SAMPLES_FILE).is_file()


def is_human_project(path: Path) -> bool:
    return (path / "study.json").is_file() and (path / "data" / "items.jsonl").is_file()


def load_run(root: Path, label: str | None = None) -> RunData:
    """A run folder (or a bare samples file) with its configuration and results, if written."""
    root = Path(root)
    if root.is_file():
        samples_path, folder = root, root.parent
        run: dict[str, Any] = {}
        results: dict[str, Any] = {}
    else:
        samples_path, folder = root / SAMPLES_FILE, root
        run = read_json_object(root / RUN_FILE, missing_ok=True)
        results = read_json_object(root / RESULTS_FILE, missing_ok=True)
    samples = [record for _, record in iter_jsonl(samples_path)]
    return RunData(root=root, label=label or folder.name or str(root), run=run, results=results, samples=samples)


def load_analyses(root: Path) -> dict[str, dict[str, Any]]:
    """`frontier.json`, `scaling.json`, ... present in `root` (analysis name -> contents)."""
    found = {}
    for name in ANALYSIS_FILES:
        data = read_json_object(root / f"{name}.json", missing_ok=True)
        if data:
            found[name] = data
    return found


def collect(paths: Sequence[str | Path]) -> ReportInputs:
    """Everything under `paths`; a path holding nothing reportable is a one-line error."""
    inputs = ReportInputs()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise EFTEvalError(f"{path} does not exist")
        if path.is_file():
            if not path.name.endswith(".jsonl"):
                raise EFTEvalError(f"{path}: give a run folder, a sweep folder, a human-study project or a samples.jsonl file")
            inputs.runs.append(load_run(path, label=path.stem if path.name != SAMPLES_FILE else path.parent.name))
            continue
        if is_run_folder(path):
            inputs.runs.append(load_run(path))
            # The demo keeps its frontier sweep inside its run folder (`runs/demo/frontier`).
            for child in sorted(c for c in path.iterdir() if (c / SWEEP_FILE).is_file()):
                _add_sweep(child, inputs)
        elif is_human_project(path):
            # The adjudication the study's last `human-study report` used, if any.
            previous = read_json_object(path / "report" / "report.json", missing_ok=True)
            adjudication = previous.get("adjudication")
            inputs.human_projects.append((path, Path(adjudication) if adjudication else None))
        elif (report := read_json_object(path / "report.json", missing_ok=True)).get("project"):
            adjudication = report.get("adjudication")  # a `human-study report` folder
            inputs.human_projects.append((Path(report["project"]), Path(adjudication) if adjudication else None))
        elif not _add_sweep(path, inputs):
            raise EFTEvalError(
                f"{path}: nothing to report (no {SAMPLES_FILE}, no runs/*/{SAMPLES_FILE}, no analysis JSON such as "
                "frontier.json, not a human-study project)"
            )
    _unique_labels(inputs.runs)
    return inputs


def _add_sweep(path: Path, inputs: ReportInputs) -> bool:
    """A sweep folder (`eft-eval sweep`): sweep.json, runs/<label>/, analysis/<kind>.json; False if empty."""
    sweep = read_json_object(path / SWEEP_FILE, missing_ok=True)
    runs = [load_run(child) for child in _sweep_runs(path, sweep)]
    inputs.runs += runs
    analyses = {**load_analyses(path), **(load_analyses(path / "analysis") if (path / "analysis").is_dir() else {})}
    if analyses or sweep:
        inputs.studies.append(StudyData(root=path.resolve(), analyses=analyses, sweep=sweep))
    return bool(runs or analyses or sweep)


def _sweep_runs(root: Path, sweep: dict[str, Any]) -> list[Path]:
    """The run folders under `root/runs/`, in the sweep's grid order (alpha 0, 0.1, ..., 1)."""
    runs_dir = root / "runs"
    if not runs_dir.is_dir():
        return []
    order = {str(point.get("label")): index for index, point in enumerate(sweep.get("points") or [])}
    children = [child for child in runs_dir.iterdir() if is_run_folder(child)]
    return sorted(children, key=lambda p: (order.get(p.name, len(order)), _natural_key(p.name)))


def run_folders_in(paths: Sequence[str | Path]) -> list[Path]:
    """The run folders among `paths` and in their `runs/` (what `eft-eval report` re-aggregates)."""
    folders = []
    for given in paths:
        path = Path(given)
        if path.is_dir() and is_run_folder(path):
            folders.append(path)
        elif path.is_dir():
            folders += _sweep_runs(path, read_json_object(path / SWEEP_FILE, missing_ok=True))
    return folders


def _natural_key(name: str) -> list[Any]:
    """`alpha=0.1` < `alpha=0.5` < `alpha=1`, `run2` < `run10`."""
    import re

    return [float(part) if re.fullmatch(r"\d+(?:\.\d+)?", part) else part for part in re.split(r"(\d+(?:\.\d+)?)", name)]


def _unique_labels(runs: list[RunData]) -> None:
    """Runs from different folders may share a folder name: prefix the parent folder."""
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    for run in runs:
        if seen[run.label] > 1:
            run.label = f"{run.root.parent.name}/{run.label}"
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
        if counts[run.label] > 1:
            run.label = f"{run.label} ({counts[run.label]})"


__all__ = [
    "ReportInputs", "RunData", "StudyData", "collect", "is_human_project", "is_run_folder", "load_analyses", "load_run",
    "run_folders_in",
]
