"""Find what a report shows in the folders it is given: runs, study analyses, human studies.

A folder may be a run folder (`samples.jsonl`), a sweep folder (`sweep.json`, `runs/<label>/` run
folders, the analyses' `frontier.json`, `scaling.json`, `top_p.json`, ... in `analysis/` or beside them), an
analysis output folder alone, a pairwise folder (`eft-eval pairwise`: `pairwise.json`, `pairs.jsonl`,
`results.json`; a sweep's under `pairwise/`), or a human-study project (`study.json` + `data/items.jsonl`).
A bare `samples.jsonl` file is a run of its own. Nothing here draws or renders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import iter_jsonl, read_json_object
from eft_eval.runfolder import (
    PAIRS_FILE,
    PAIRWISE_FILE,
    RESULTS_FILE,
    RUN_PAIRS_FILE,
    SAMPLES_FILE,
    SWEEP_FILE,
    RunFolder,
    StoredRun,
    SweepFolder,
    read_run,
)

ANALYSIS_FILES = ("frontier", "scaling", "top_p", "compare", "agreement", "calibrated")
"""`<name>.json` files written by `eft-eval analyze` / `sweep` (docs/formats.md)."""


RunData = StoredRun
"""One run as the report reads it (`eft_eval.runfolder.read_run`)."""


@dataclass
class StudyData:
    """The analysis outputs found in one folder, by analysis name."""

    root: Path
    analyses: dict[str, dict[str, Any]]
    sweep: dict[str, Any] = field(default_factory=dict)
    """`sweep.json` when the folder is a sweep's: the study's name, what it is about, its points."""


@dataclass
class PairwiseData:
    """A pairwise folder: what was compared (pairwise.json), its numbers (results.json), its pairs."""

    root: Path
    record: dict[str, Any]
    results: dict[str, Any]
    pairs: list[dict[str, Any]]
    run_pairs: list[dict[str, Any]] = field(default_factory=list)
    """A round robin's run-vs-run pairs (`run_pairs.jsonl`; the other run in `reference`)."""


@dataclass
class ReportInputs:
    runs: list[RunData] = field(default_factory=list)
    studies: list[StudyData] = field(default_factory=list)
    pairwise: list[PairwiseData] = field(default_factory=list)
    human_projects: list[tuple[Path, Path | None]] = field(default_factory=list)
    """(annotation project, adjudication project or None)."""


def is_human_project(path: Path) -> bool:
    return (path / "study.json").is_file() and (path / "data" / "items.jsonl").is_file()


def load_analyses(root: Path) -> dict[str, dict[str, Any]]:
    """`frontier.json`, `scaling.json`, ... present in `root` (analysis name -> contents)."""
    found = {}
    for name in ANALYSIS_FILES:
        data = read_json_object(root / f"{name}.json", missing_ok=True)
        if data:
            found[name] = data
    return found


def collect(paths: Sequence[str | Path], include_paths: Sequence[str] = ()) -> ReportInputs:
    """Everything under `paths`; a path holding nothing reportable is a one-line error.

    `include_paths`: judge folders, whose judges keep their names even where one is another judge's
    former name (`harmlessness`); every other judgment made under a former name reads as its judge's.
    """
    from eft_eval.report._runs import known_judges

    inputs = ReportInputs()
    judges_here = known_judges(include_paths) if include_paths else None

    def load_run(path: Path) -> RunData:
        return read_run(path, judges_here=judges_here)

    for given in paths:
        path = Path(given)
        if not path.exists():
            raise EFTEvalError(f"{path} does not exist")
        if path.is_file():
            if not path.name.endswith(".jsonl"):
                raise EFTEvalError(f"{path}: give a run folder, a sweep folder, a human-study project or a "
                                   "samples.jsonl file")
            inputs.runs.append(load_run(path))
            continue
        if RunFolder(path).is_run():
            inputs.runs.append(load_run(path))
            # The demo keeps its frontier sweep inside its run folder (`runs/demo/frontier`).
            for child in sorted(c for c in path.iterdir() if (c / SWEEP_FILE).is_file()):
                _add_sweep(child, inputs, load_run)
        elif (path / PAIRWISE_FILE).is_file():
            inputs.pairwise.append(load_pairwise(path))
        elif is_human_project(path):
            # The adjudication the study's last `human-study report` used, if any.
            previous = read_json_object(path / "report" / "report.json", missing_ok=True)
            adjudication = previous.get("adjudication")
            inputs.human_projects.append((path, Path(adjudication) if adjudication else None))
        elif (report := read_json_object(path / "report.json", missing_ok=True)).get("project"):
            adjudication = report.get("adjudication")  # a `human-study report` folder
            inputs.human_projects.append((Path(report["project"]), Path(adjudication) if adjudication else None))
        elif not _add_sweep(path, inputs, load_run):
            raise EFTEvalError(
                f"{path}: nothing to report (no {SAMPLES_FILE}, no runs/*/{SAMPLES_FILE}, no analysis JSON such as "
                f"frontier.json, no {PAIRWISE_FILE}, not a human-study project)"
            )
    _unique_labels(inputs.runs)
    return inputs


def _add_sweep(path: Path, inputs: ReportInputs, load_run: Callable[[Path], RunData]) -> bool:
    """A sweep folder (`eft-eval sweep`): sweep.json, runs/<label>/, analysis/<kind>.json; False if empty."""
    folder = SweepFolder(path)
    sweep = read_json_object(folder.record, missing_ok=True)
    runs = [load_run(child) for child in folder.run_folders()]
    inputs.runs += runs
    analyses = {**load_analyses(path), **(load_analyses(folder.analysis) if folder.analysis.is_dir() else {})}
    if analyses or sweep:
        inputs.studies.append(StudyData(root=path.resolve(), analyses=analyses, sweep=sweep))
    pairwise = [load_pairwise(child) for child in folder.pairwise_folders()]  # the study's `pairwise:`
    inputs.pairwise += pairwise
    return bool(runs or analyses or sweep or pairwise)


def load_pairwise(path: Path) -> PairwiseData:
    """A pairwise folder; one whose command has not finished yet (no results.json) shows no numbers."""
    pairs, run_pairs = path / PAIRS_FILE, path / RUN_PAIRS_FILE
    return PairwiseData(root=path.resolve(), record=read_json_object(path / PAIRWISE_FILE),
                        results=read_json_object(path / RESULTS_FILE, missing_ok=True),
                        pairs=[row for _, row in iter_jsonl(pairs)] if pairs.is_file() else [],
                        run_pairs=[row for _, row in iter_jsonl(run_pairs)] if run_pairs.is_file() else [])


def run_folders_in(paths: Sequence[str | Path]) -> list[Path]:
    """The run folders among `paths` and in their `runs/` (what `eft-eval report` re-aggregates)."""
    folders = []
    for given in paths:
        path = Path(given)
        if path.is_dir() and RunFolder(path).is_run():
            folders.append(path)
        elif path.is_dir():
            folders += SweepFolder(path).run_folders()
    return folders


def _unique_labels(runs: list[RunData]) -> None:
    """Runs from different folders may share a folder name: prefix the parent folder."""
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    for run in runs:
        if seen[run.label] > 1:
            run.label = f"{run.path.parent.name}/{run.label}"
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
        if counts[run.label] > 1:
            run.label = f"{run.label} ({counts[run.label]})"


__all__ = [
    "PairwiseData", "ReportInputs", "RunData", "StudyData", "collect", "is_human_project", "load_analyses",
    "load_pairwise", "run_folders_in",
]
