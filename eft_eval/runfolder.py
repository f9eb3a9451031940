"""The run folder and the sweep folder: the contract every later step reads (docs/formats.md).

    RUN/run.json              the configuration, versions, seed and the `identity` a resume must match
    RUN/generations.jsonl     finished generations, appended as they finish (what a resume reuses)
    RUN/judge-cache.sqlite    judge answers, committed as they arrive (what a resume replays)
    RUN/judge-batches.json    the Batch API's batches (batch mode)
    RUN/samples.jsonl         one judged sample per document
    RUN/results.json          per judge: mean, standard error, counts, direction; the cost ledger
    SWEEP/sweep.json          the study and its grid points; SWEEP/runs/<label>/ one run folder each
    PAIRS/pairwise.json       `eft-eval pairwise`: the runs and reference compared; PAIRS/pairs.jsonl both
                              orders' verdicts per run and prompt; PAIRS/results.json win rates

Everything that names these files, opens a folder for a run (its identity checked, its lock taken)
or reads a finished run is here, so the steps that write a folder and those that read it agree on
one shape. It imports no torch and no other package of the project: every layer may use it.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError, short_repr
from eft_eval.fileio import LOCK_FILE, iter_jsonl, read_json_object, write_json
from eft_eval.locking import lock_folder

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
GENERATIONS_FILE = "generations.jsonl"
JUDGE_CACHE_FILE = "judge-cache.sqlite"
BATCH_STATE_FILE = "judge-batches.json"
SWEEP_FILE = "sweep.json"
RUNS_FOLDER = "runs"
ANALYSIS_FOLDER = "analysis"
PAIRWISE_FOLDER = "pairwise"
"""A sweep's pairwise comparisons (a study's `pairwise:`): one pairwise folder, or one per group."""
PAIRWISE_FILE = "pairwise.json"
"""A pairwise folder's record (`eft-eval pairwise`): the runs, the reference, the judges."""
PAIRS_FILE = "pairs.jsonl"
"""A pairwise folder's pairs: both orders' verdicts per run and prompt."""
RUN_PAIRS_FILE = "run_pairs.jsonl"
"""A round-robin pairwise folder's pairs of runs with each other (rows as in `PAIRS_FILE`, the other
run in `reference`)."""

STATUSES = ("scored", "abstained", "failed")
"""A judgment's `status`: only `scored` carries a score."""

JUDGE_ALIASES: dict[str, str] = {"harmlessness": "harm"}
"""A judge's former name -> its current one: runs judged before a rename still read."""


def judge_aliases(judge: str) -> list[str]:
    """A judge's other names, former and current (`harmlessness` <-> `harm`)."""
    return [old for old, new in JUDGE_ALIASES.items() if new == judge] + (
        [JUDGE_ALIASES[judge]] if judge in JUDGE_ALIASES else [])


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class RunFolder:
    """One run's files; `open` creates or resumes the folder for a run."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.run = self.root / RUN_FILE
        self.samples = self.root / SAMPLES_FILE
        self.results = self.root / RESULTS_FILE
        self.generations = self.root / GENERATIONS_FILE
        self.judge_cache = self.root / JUDGE_CACHE_FILE
        self.batch_state = self.root / BATCH_STATE_FILE

    def is_run(self) -> bool:
        """Whether the folder holds judged samples (what the report and the analyses read)."""
        return self.samples.is_file()

    def lock(self, what: str) -> Any:
        """The folder's lock (`eft_eval.locking`), held by one command at a time."""
        return lock_folder(self.root, what)

    def check(self) -> None:
        """Refuse an existing path that is not a run folder: a file, or a folder with other content.

        A folder holding only a lock file (`eft_eval.locking`) is an empty folder.
        """
        if not self.root.exists() or self.run.is_file():
            return
        if not self.root.is_dir() or any(p.name != LOCK_FILE for p in self.root.iterdir()):
            raise EFTEvalError(
                f"{self.root} exists and is not an eft-eval run folder (no {RUN_FILE}); choose another --output")

    def open(self, record: dict[str, Any]) -> RunFolder:
        """Create or resume the folder for a run described by `record` (which holds an `identity`).

        Refuses a folder holding a run whose identity differs, naming what differs, one whose model
        files or task data changed since (`revision_changes`), and a non-empty folder that is not a
        run folder at all.
        """
        previous: dict[str, Any] | None = None
        if self.run.is_file():
            previous = read_json_object(self.run)
            differences = identity_differences(previous, record)
            # A run that stopped before its first generation (a model that failed to load) has nothing
            # to mix with: its folder is taken over.
            if differences and self._holds_results():
                raise EFTEvalError(
                    f"{self.root} holds a run of a different configuration ({'; '.join(differences)}); "
                    "refusing to mix them: choose another --output, or delete the folder to start over"
                )
            changed = [] if differences else revision_changes(previous, record)
            if changed and self._holds_results():
                raise EFTEvalError(
                    f"{self.root}: {changed[0]}: its stored generations would be mixed with another version's; "
                    "choose another --output, or delete the folder to start over"
                )
            if differences or changed:
                previous = None  # taken over: a new run
        else:
            self.check()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EFTEvalError(f"cannot create the output folder {self.root}: {error.strerror or error}") from error
        record = {**record, "created": (previous or {}).get("created", now()), "updated": now()}
        if previous is not None:
            record["resumed"] = int(previous.get("resumed", 0)) + 1
        write_json(self.run, record)
        return self

    def finished_record(self) -> dict[str, Any] | None:
        """run.json of a run that wrote its results, or None (unfinished, or unreadable)."""
        if not (self.results.is_file() and self.run.is_file()):
            return None
        try:
            return read_json_object(self.run)
        except EFTEvalError:
            return None

    def _holds_results(self) -> bool:
        return self.samples.exists() or (self.generations.exists() and self.generations.stat().st_size > 0)


class SweepFolder:
    """A sweep's files: `sweep.json`, one run folder per grid point, the analysis folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.record = self.root / SWEEP_FILE
        self.runs = self.root / RUNS_FOLDER
        self.analysis = self.root / ANALYSIS_FOLDER
        self.pairwise = self.root / PAIRWISE_FOLDER

    def pairwise_folder(self, group: str = "") -> Path:
        """Where a study's pairwise comparison of one group goes: `pairwise/`, or `pairwise/<group>/`."""
        return self.pairwise / group if group else self.pairwise

    def pairwise_folders(self) -> list[Path]:
        """The pairwise folders the sweep wrote (`pairwise/` and its sub-folders with a pairwise.json)."""
        if not self.pairwise.is_dir():
            return []
        candidates = [self.pairwise, *sorted(child for child in self.pairwise.iterdir() if child.is_dir())]
        return [folder for folder in candidates if (folder / PAIRWISE_FILE).is_file()]

    def run(self, label: str) -> RunFolder:
        return RunFolder(self.runs / label)

    def lock(self, what: str, shard: tuple[int, int] | None = None) -> Any:
        """The sweep's lock; parallel shards into one folder each lock their own share."""
        return lock_folder(self.root if shard is None else self.root / "shards" / f"{shard[0]}-of-{shard[1]}", what)

    def run_folders(self) -> list[Path]:
        """The finished run folders under `runs/`, in the sweep's grid order (alpha 0, 0.1, ..., 1)."""
        if not self.runs.is_dir():
            return []
        points = read_json_object(self.record, missing_ok=True).get("points") or []
        order = {str(point.get("label")): index for index, point in enumerate(points)}
        children = [child for child in self.runs.iterdir() if RunFolder(child).is_run()]
        return sorted(children, key=lambda p: (order.get(p.name, len(order)), _natural_key(p.name)))


def _natural_key(name: str) -> list[Any]:
    """`alpha=0.1` < `alpha=0.5` < `alpha=1`, `run2` < `run10`."""
    parts = re.split(r"(\d+(?:\.\d+)?)", name)
    return [float(part) if re.fullmatch(r"\d+(?:\.\d+)?", part) else part for part in parts]


def identity_differences(previous_run: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """What differs between the `identity` of a folder's run.json and that of `record` (empty: the same run)."""
    return _differences(previous_run.get("identity", {}), record["identity"])


def revision_changes(previous_run: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """Components and task data files whose recorded revision differs from the one `record` holds now
    (a model folder retrained in place, a hub snapshot updated, a data file edited). A side that
    records none (a run from before revisions were recorded, a hub model that could not be resolved
    offline) is not compared."""
    found = []
    old_models, new_models = previous_run.get("revisions") or {}, record.get("revisions") or {}
    for role, now_entry in new_models.items():
        old_entry = (old_models.get(role) or {}) if isinstance(old_models, dict) else {}
        before, current = old_entry.get("revision"), now_entry.get("revision") if isinstance(now_entry, dict) else None
        if before and current and before != current and old_entry.get("model") == now_entry.get("model"):
            found.append(f"the {role} model ({now_entry.get('model')}) is at revision {current} now, "
                         f"but this run was generated at {before}")
    old_files = {f.get("path"): f.get("sha256") for f in previous_run.get("task_data_files") or []
                 if isinstance(f, dict)}
    for entry in record.get("task_data_files") or []:
        before = old_files.get(entry["path"])
        if before and before != entry["sha256"]:
            found.append(f"the task's data file {entry['path']} has sha256 {entry['sha256']} now, "
                         f"but this run was generated from {before}")
    return found


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """`key.path: old in the folder, new now` for each differing leaf (compared as JSON)."""
    old, new = json.loads(json.dumps(old, default=str)), json.loads(json.dumps(new, default=str))
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            found += _differences(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))
        return found
    if old == new:
        return []
    return [f"{where or 'value'}: {_short(old)} in the folder, {_short(new)} now"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


# -- reading a finished run ------------------------------------------------------------------------

@dataclass
class StoredRun:
    """A finished run as its files hold it: configuration, results and judged samples.

    Judgments made under a judge's former name are under its current one (`harmlessness` ->
    `harm`) in `rows`; `renamed` says which names were.
    """

    path: Path
    """As given: a run folder or a samples file."""
    label: str
    """The folder's name (a samples file's stem when it is not `samples.jsonl`)."""
    rows: list[dict[str, Any]]
    run: dict[str, Any] = field(default_factory=dict)
    """run.json, or {} for a bare samples file."""
    results: dict[str, Any] = field(default_factory=dict)
    """results.json, or {}."""
    lines: list[int] = field(default_factory=list)
    """Each row's line number in its file (for errors that point into it)."""
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def samples_path(self) -> Path:
        return self.path / SAMPLES_FILE if self.path.is_dir() else self.path

    def judge_names(self) -> list[str]:
        return list(dict.fromkeys(name for row in self.rows for name in row.get("judgments") or {}))

    def judgments(self, judge: str) -> list[dict[str, Any] | None]:
        """Each sample's judgment by `judge`, None where it has none. `judge@model` is one model of
        a jury (`--judge-model a,b,c`): its own judgment, kept under the jury's `models`."""
        base, model = split_jury_member(judge) if judge not in self.judge_names() else (judge, None)
        found = [(row.get("judgments") or {}).get(base) for row in self.rows]
        if model is None:
            return found
        return [(judgment.get("models") or {}).get(model) if isinstance(judgment, dict) else None
                for judgment in found]

    def resolve_judge(self, judge: str) -> str:
        """The name `judge` has in this run, accepting a judge's former or new name."""
        names = self.judge_names()
        for name in (judge, *judge_aliases(judge)):
            if name in names:
                return name
        base, model = split_jury_member(judge)
        if model is not None:  # one model of a jury: `harm@gpt-4o`
            name = self.resolve_judge(base)
            models = self.jury_models(name)
            if model not in models:
                raise EFTEvalError(f"{self.path}: judge {name!r} has no jury model {model!r} "
                                   f"(its models here: {', '.join(models) or 'none, it is one model'})")
            return f"{name}{JURY_MEMBER}{model}"
        raise EFTEvalError(f"{self.path}: no judgments by judge {judge!r} (judges here: {', '.join(names) or 'none'})")

    def jury_models(self, judge: str) -> list[str]:
        """The models of `judge`'s jury in this run, in jury order; [] for a judge of one model."""
        return list(dict.fromkeys(model for judgment in self.judgments(judge) if isinstance(judgment, dict)
                                  for model in judgment.get("models") or {}))

    def recorded_direction(self, judge: str) -> bool | None:
        """The judge's `higher_is_better` as results.json recorded it (under any of its names)."""
        if judge not in self.judge_names():
            judge = split_jury_member(judge)[0]  # a jury's model: its judge's direction
        summaries = self.results.get("judges") or {}
        for name in (judge, *judge_aliases(judge)):
            value = (summaries.get(name) or {}).get("higher_is_better")
            if isinstance(value, bool):
                return value
        return None

    @property
    def task(self) -> str | None:
        task = self.run.get("task") or (self.rows[0].get("task") if self.rows else None)
        return str(task) if task is not None else None

    def check_samples(self, judged: bool = True) -> StoredRun:
        """Refuse samples that a lenient reading would count wrong, each in one line naming file, line and value.

        Python's json module reads more than the writers write: `NaN`, a score as the text "7" or as
        `true`; read as they are, each gives a wrong number with exit 0. `judgments` maps a judge's name
        to a judgment with a known `status` and, when scored, a finite number as `score`.
        `judged=False`: a sample may lack `judgments`, a judgment may be null (counted as missing).
        """
        for number, row in zip(self.lines, self.rows):
            where = f"{self.samples_path}:{number}"
            judgments = row.get("judgments")
            if judgments is None and judged:
                raise EFTEvalError(f"{where}: not a judged sample (no 'judgments' object); is this an eft-eval "
                                   "samples.jsonl?")
            if judgments is not None and not isinstance(judgments, dict):
                raise EFTEvalError(f"{where}: judgments is {type(judgments).__name__} {short_repr(judgments)}, "
                                   "not an object of judge name -> judgment")
            for name, judgment in (judgments or {}).items():
                if judgment is not None or judged:
                    _check_judgment(name, judgment, where)
                for model, own in ((judgment or {}).get("models") or {}).items():  # a jury's models
                    _check_judgment(f"{name}{JURY_MEMBER}{model}", own, where)
        return self


JURY_MEMBER = "@"
"""`harm@gpt-4o`: the judgments of one model of judge `harm`'s jury (analyses take it as a judge name)."""


def split_jury_member(judge: str) -> tuple[str, str | None]:
    """(`harm`, `gpt-4o`) from `harm@gpt-4o`; (`harm`, None) from `harm`."""
    base, separator, model = judge.partition(JURY_MEMBER)
    return (base, model) if separator and model else (judge, None)


def _check_judgment(name: str, judgment: Any, where: str) -> None:
    if not isinstance(judgment, dict):
        raise EFTEvalError(f"{where}: the judgment of {name!r} is {short_repr(judgment)}, not an object with status "
                           "and score")
    if judgment.get("status") not in STATUSES:
        raise EFTEvalError(f"{where}: judgment {name!r} has status {short_repr(judgment.get('status'))}; expected "
                           f"one of {', '.join(STATUSES)}")
    score = judgment.get("score")
    if judgment["status"] != "scored":
        return
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise EFTEvalError(f"{where}: judgment {name!r} is scored but its score {short_repr(score)} is not a number "
                           "(a number, never text or true/false): re-judge it or fix the file")
    if not math.isfinite(score):
        raise EFTEvalError(f"{where}: judgment {name!r} is scored but the score is {score!r} (not a finite number): "
                           "re-judge it or fix the file")


def read_run(path: str | Path, label: str | None = None, judges_here: Collection[str] | None = None) -> StoredRun:
    """A run folder, or a samples file (with run.json/results.json beside it when it is a `samples.jsonl`).

    `judges_here`, the judges installed here when known: a former name that names a judge of its own
    among them (or whose new name is not among them) keeps its judgments' name, as judge loading does.
    """
    path = Path(path)
    if path.is_dir():
        folder, samples = path, path / SAMPLES_FILE
        if not samples.is_file():
            raise EFTEvalError(f"{path}: no {SAMPLES_FILE} (not a finished run folder: run or judge it first)")
    elif path.is_file():
        folder, samples = path.parent, path
    else:
        raise EFTEvalError(f"{path}: no such run folder or samples file")
    numbered = list(iter_jsonl(samples))
    if not numbered:
        raise EFTEvalError(f"{samples}: holds no samples")
    beside = samples.name == SAMPLES_FILE
    run = read_json_object(folder / RUN_FILE, missing_ok=True) if beside else {}
    results = read_json_object(folder / RESULTS_FILE, missing_ok=True) if beside else {}
    rows = [row for _, row in numbered]
    stored = StoredRun(path, label or (folder.name if beside else samples.stem), rows, run, results,
                       [number for number, _ in numbered])
    own = () if judges_here is None else [old for old, new in JUDGE_ALIASES.items()
                                          if old in judges_here or new not in judges_here]
    stored.renamed = _rename_former_judges(rows, own)
    return stored


def remembered_include_paths(given: Sequence[str], runs: Iterable[str | Path]) -> list[str]:
    """`given`, then the include folders each run's `run.json` recorded (`include_paths`), each folder once.

    So `report` and `analyze` find a run's own judges (and tasks) without being told again where
    they live. `runs`: run folders or samples files; recorded folders that are gone are left out,
    and a damaged `run.json` is left to the run's reader to name.
    """
    paths = list(given)
    seen = {Path(path).resolve() for path in paths}
    for run in map(Path, runs):
        folder = run if run.is_dir() else run.parent if run.name == SAMPLES_FILE else None
        try:
            record = read_json_object(folder / RUN_FILE, missing_ok=True) if folder is not None else {}
        except EFTEvalError:
            continue
        recorded = record.get("include_paths")
        for path in recorded if isinstance(recorded, list) else []:
            if isinstance(path, str) and Path(path).is_dir() and Path(path).resolve() not in seen:
                seen.add(Path(path).resolve())
                paths.append(path)
    return paths


def _rename_former_judges(rows: Sequence[dict[str, Any]], own_judges: Collection[str]) -> dict[str, str]:
    """Judgments under a judge's former name move to its current one, unless a sample has both."""
    renamed: dict[str, str] = {}
    for old, new in JUDGE_ALIASES.items():
        if old in own_judges:
            continue
        for row in rows:
            judgments = row.get("judgments")
            if isinstance(judgments, dict) and old in judgments and new not in judgments:
                judgments[new] = judgments.pop(old)
                renamed[old] = new
    return renamed


__all__ = [
    "ANALYSIS_FOLDER", "BATCH_STATE_FILE", "GENERATIONS_FILE", "JUDGE_ALIASES", "JUDGE_CACHE_FILE", "PAIRS_FILE",
    "PAIRWISE_FILE", "PAIRWISE_FOLDER", "RESULTS_FILE", "RUN_PAIRS_FILE",
    "RUNS_FOLDER", "RUN_FILE", "SAMPLES_FILE", "STATUSES", "SWEEP_FILE", "RunFolder", "StoredRun", "SweepFolder",
    "identity_differences", "judge_aliases", "now", "read_run", "remembered_include_paths", "revision_changes",
]
