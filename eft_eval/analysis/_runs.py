"""Finished runs, loaded for the analyses: a run folder (`eft-eval run`) or a bare samples.jsonl.

A run folder (`eft_eval.runfolder`, read by `read_run`) holds run.json (the configuration, with the model
spec as `model_spec`), samples.jsonl (one judged sample per document) and results.json (per judge
`higher_is_better`, mean, counts). The analyses need only samples.jsonl; run.json gives alpha, the
base model and `top_p_weights` (for a bare samples file, the spec in its samples' `model` field:
`_run_spec.py`), and a judge's direction comes from results.json, else from the judge's YAML file.

Prompts are matched across runs by `doc_id` (the task's document index: same task and seed give
the same documents), or by the query text in files without one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eft_eval.analysis._run_spec import check_one_model, samples_spec, unknown_setting
from eft_eval.errors import EFTEvalError, short_repr
from eft_eval.runfolder import (
    SAMPLES_FILE,
    StoredRun,
    judge_aliases,
    read_run,
    remembered_include_paths,
    split_jury_member,
)


@dataclass(frozen=True)
class JudgeScores:
    """One judge's scores in one run: scored prompts only, and what was left out, counted."""

    judge: str
    """The judge's name as found in the run (a former name such as `harmlessness` is kept)."""
    scores: dict[str, float]
    """Prompt id -> score, for scored judgments only."""
    n_abstained: int
    n_failed: int
    n_missing: int
    """Samples with no judgment by this judge at all."""

    @property
    def n_scored(self) -> int:
        return len(self.scores)

    def counts(self) -> dict[str, int]:
        return {"n_scored": self.n_scored, "n_abstained": self.n_abstained, "n_failed": self.n_failed,
                "n_missing": self.n_missing}


@dataclass
class LoadedRun(StoredRun):
    """One run's samples and configuration, with what the analyses ask of them."""

    include_paths: Sequence[str] = ()
    labelled: bool = False
    """The label was given (a mapping's key), not taken from the folder's name."""
    _ids: list[str] = field(default_factory=list)

    def scores(self, judge: str) -> JudgeScores:
        name = self.resolve_judge(judge)
        scores: dict[str, float] = {}
        counts = Counter[str]()
        for prompt_id, judgment in zip(self.prompt_ids, self.judgments(name)):  # checked by `load_run`
            counts[judgment["status"] if judgment else "missing"] += 1
            if judgment and judgment["status"] == "scored":
                scores[prompt_id] = float(judgment["score"])
        return JudgeScores(name, scores, counts["abstained"], counts["failed"], counts["missing"])

    def queries(self) -> dict[str, Any]:
        """Prompt id -> the query text its sample recorded (None when it recorded none)."""
        return {prompt_id: row.get("query") for prompt_id, row in zip(self.prompt_ids, self.rows)}

    @property
    def prompt_ids(self) -> list[str]:
        if not self._ids:
            self._ids = _prompt_ids(self)
        return self._ids

    def higher_is_better(self, judge: str) -> bool:
        """The judge's direction: results.json, else the judge's YAML file (former names too)."""
        recorded = self.recorded_direction(judge)
        if recorded is not None:
            return recorded
        from eft_eval.judging import discover_judges

        available = discover_judges(list(self.include_paths))
        judge = split_jury_member(judge)[0] if judge not in self.judge_names() else judge
        for name in (judge, *judge_aliases(judge)):
            if name in available:
                return available[name].higher_is_better
        raise EFTEvalError(f"{self.path}: the direction of judge {judge!r} is unknown (no results.json names it "
                           "and no judge file defines it): add its judge folder with --include-path")

    def direction(self, judge: str) -> bool | None:
        """`higher_is_better(judge)`, or None where it is unknown (for what can do without it)."""
        try:
            return self.higher_is_better(judge)
        except EFTEvalError:
            return None

    @property
    def model_spec(self) -> dict[str, Any]:
        """run.json's model spec, else the one each sample's `model` field names; {} when neither says."""
        spec = self.run.get("model_spec")
        if isinstance(spec, dict):
            return spec
        return samples_spec(self.rows) or {}

    def known_spec(self, setting: str) -> dict[str, Any]:
        """`model_spec`, for reading `setting`: refused in one line when no file states it (never guessed)."""
        spec = self.model_spec
        if not spec:
            raise unknown_setting(self.path, setting, self.rows)
        return spec

    @property
    def alpha(self) -> float | None:
        """Reward interpolation's alpha: the first delta's weight when there are two deltas."""
        deltas = self.known_spec("alpha").get("deltas") or []
        return float(deltas[0]["weight"]) if len(deltas) == 2 else None

    @property
    def base(self) -> str | None:
        """The base model's short name (the folder or hub id's last part)."""
        base = self.known_spec("base model").get("base") or {}
        model = base.get("model") if isinstance(base, dict) else None
        return Path(str(model)).name if model else None

    @property
    def top_p_weights(self) -> float | None:
        value = self.known_spec("top_p_weights").get("top_p_weights")
        return float(value) if value is not None else None


def _prompt_ids(run: StoredRun) -> list[str]:
    ids = []
    for number, row in zip(run.lines, run.rows):
        doc_id = row.get("doc_id")
        # A whole number or a text: what `run` and `judge` write; anything else would be matched
        # across runs by its Python spelling (`1.0` is not `1`, `True` is not `1`).
        if doc_id is not None and (isinstance(doc_id, bool) or not isinstance(doc_id, (int, str))):
            raise EFTEvalError(f"{run.samples_path}:{number}: doc_id {doc_id!r} is not a whole number or a text "
                               "(prompts are matched across runs by it): write it as an integer")
        if doc_id is not None:
            ids.append(f"doc:{doc_id}")
        elif isinstance(row.get("query"), str):
            ids.append(f"query:{row['query']}")
        else:
            raise EFTEvalError(f"{run.path}: sample {number} has neither doc_id nor query: cannot match it across runs")
    seen: set[str] = set()
    for prompt_id in ids:
        if prompt_id in seen:
            raise EFTEvalError(f"{run.path}: prompt {prompt_id} appears twice (samples of several models or tasks in "
                               "one file? give one file per configuration)")
        seen.add(prompt_id)
    return ids


def load_run(path: str | Path, label: str | None = None, include_paths: Sequence[str] = ()) -> LoadedRun:
    """A run folder, or a samples.jsonl file (with run.json/results.json beside it if present)."""
    stored = read_run(path, label).check_samples(judged=False)
    check_one_model(stored.rows, stored.samples_path)
    # The judge folders the run was made with (run.json) count too: its judges' directions are found there.
    include_paths = remembered_include_paths(include_paths, [path])
    return LoadedRun(**vars(stored), include_paths=tuple(include_paths), labelled=label is not None)


def load_runs(paths: Mapping[str, str | Path] | Sequence[str | Path],
              include_paths: Sequence[str] = ()) -> list[LoadedRun]:
    """Several runs: labelled by the mapping's keys, or by their folder names."""
    if isinstance(paths, Mapping):
        return [load_run(path, label, include_paths) for label, path in paths.items()]
    _refuse_repeated(paths)
    runs = [load_run(path, None, include_paths) for path in paths]
    labels = [run.label for run in runs]
    for run in runs:
        if labels.count(run.label) > 1:  # two folders of one name: label them by path instead
            run.label = str(run.path)
    return runs


def _refuse_repeated(paths: Sequence[str | Path]) -> None:
    """One run given twice would count twice: a second, identical point, row or side."""
    seen: dict[Path, str | Path] = {}
    for path in paths:
        key = (Path(path) / SAMPLES_FILE if Path(path).is_dir() else Path(path)).resolve()
        if key in seen:
            raise EFTEvalError(f"{path}: this run is given twice (also as {seen[key]}): give each run once")
        seen[key] = path


@dataclass(frozen=True)
class PairedScores:
    """Several runs' scores by one judge on the prompts scored in every run."""

    judge: str
    prompt_ids: list[str]
    matrix: list[list[float]]
    """Runs x prompts, in the order the runs were given."""
    per_run: list[JudgeScores]
    """Each run's own scores and counts (what was excluded, and why)."""

    @property
    def n_paired(self) -> int:
        return len(self.prompt_ids)


def paired_scores(runs: Sequence[LoadedRun], judge: str, leave_out: Collection[str] = ()) -> PairedScores:
    """Scores of `judge` on the prompts every run scored (abstained, failed, missing: left out),
    less the prompt ids in `leave_out` (those `different_prompts` found)."""
    per_run = [run.scores(judge) for run in runs]
    common = set(per_run[0].scores) if per_run else set()
    for scores in per_run[1:]:
        common &= set(scores.scores)
    common -= set(leave_out)
    order = [p for p in runs[0].prompt_ids if p in common] if runs else []
    return PairedScores(judge, order, [[scores.scores[p] for p in order] for scores in per_run], per_run)



def shared_prompts(runs: Sequence[LoadedRun]) -> list[str]:
    """Prompt ids found in every run, in the first run's order."""
    ids = [set(run.prompt_ids) for run in runs[1:]]
    return [p for p in runs[0].prompt_ids if all(p in other for other in ids)] if runs else []


def different_prompts(runs: Sequence[LoadedRun]) -> list[str]:
    """Prompt ids found in every run whose query text is not the same in all of them.

    A doc_id names a document of a task's selection; runs of another task, seed or data file
    reuse the same ids for other prompts, and pairing those would compare unrelated answers.
    A prompt whose text some run did not record cannot be checked, and is kept.
    """
    queries = [run.queries() for run in runs]
    return [p for p in shared_prompts(runs)
            if all(isinstance(q[p], str) for q in queries) and len({q[p] for q in queries}) > 1]


def refuse_different_prompts(runs: Sequence[LoadedRun], where: str, remedy: str = "") -> None:
    """One line, quoting the first prompt whose text differs, unless the runs share their prompts."""
    different = different_prompts(runs)
    if not different:
        return
    first = different[0]
    queries = [run.queries()[first] for run in runs]
    other = next(i for i, q in enumerate(queries) if q != queries[0])
    raise EFTEvalError(
        f"{where}: {len(different)} of {len(shared_prompts(runs))} prompts matched by doc_id differ in their text "
        f"(first: {_shown(first)}: {short_repr(queries[0])} in {runs[0].path} but {short_repr(queries[other])} in "
        f"{runs[other].path}): the runs did not answer the same prompts{remedy}")


def _shown(prompt_id: str) -> str:
    kind, _, value = prompt_id.partition(":")
    return f"doc_id {value}" if kind == "doc" else f"query {short_repr(value)}"

