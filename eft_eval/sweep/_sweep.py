"""`eft-eval sweep STUDY`: every grid point of a study through the stages of a run, then the analysis.

    DIR/sweep.json        the study, its grid points, their specs and run folders
    DIR/runs/<label>/     one ordinary run folder per grid point (`eft-eval run`'s files)
    DIR/analysis/         what the study's analysis writes

Generation comes first, for all grid points at once: points over the same components share one
batched pass (`_batched.py`) and every model is loaded once for the whole sweep (one
`ModelCache`; a model no later point needs is freed: `_generation.py`). Then each point is judged
and aggregated by the run's own stages (in batch mode every point first submits its batches,
then each waits for its own: see `_judge_points`). Everything is resumable
at the run level: finished generations and judgments are never redone, so a killed sweep is
re-run as is.
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import write_json
from eft_eval.judging import JUDGE_SETTINGS, BatchesSubmitted, JudgeConfig, JudgeRunState, JudgingStopped
from eft_eval.pipeline import RUN_SETTINGS, run_command
from eft_eval.runfolder import SweepFolder
from eft_eval.settings import build, with_values
from eft_eval.sweep._study import GridPoint, Study

if TYPE_CHECKING:
    from eft_eval.pipeline import RunResult
    from eft_eval.sweep._generation import PreparedPoint

logger = logging.getLogger(__name__)


@dataclass
class SweepOptions:
    """How to run a study: where, which share, and the settings every run gets."""

    output: Path
    include_paths: list[str] = field(default_factory=list)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    judge_cache_in_run: bool = True
    shard: tuple[int, int] | None = None
    """(I, N): run the I-th of N contiguous shares of the grid (1-based)."""
    progress: bool = True
    analyze: bool = True


@dataclass
class SweepResult:
    finished: list[str]
    missing: list[str]
    failed: dict[str, str]
    analysis: dict[str, Any] | None
    pairwise: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(pairwise folder, its results.json) of each comparison the study's `pairwise:` made."""


def run_folder(options: SweepOptions, point: GridPoint) -> Path:
    return SweepFolder(options.output).run(point.label).root


def shard_points(points: Sequence[GridPoint], shard: tuple[int, int] | None) -> list[GridPoint]:
    """The I-th of N contiguous shares (neighbouring points share models, so a share keeps them)."""
    if shard is None:
        return list(points)
    index, count = shard
    if not 1 <= index <= count:
        raise EFTEvalError(f"--shard {index}/{count}: I must be between 1 and N")
    size, extra = divmod(len(points), count)
    start = (index - 1) * size + min(index - 1, extra)
    return list(points[start:start + size + (1 if index <= extra else 0)])


def run_config(point: GridPoint, options: SweepOptions) -> Any:
    """The `RunConfig` of one grid point: exactly what its `eft-eval run` command line gives."""
    from eft_eval.pipeline import RunConfig

    return build(RunConfig, RUN_SETTINGS, point.run, task=str(point.run["task"]), model=point.model,
                 output=run_folder(options, point), judge=with_values(options.judge, JUDGE_SETTINGS, point.judge),
                 judge_cache_in_run=options.judge_cache_in_run, include_paths=list(options.include_paths),
                 progress=options.progress)


def prepare_points(points: Sequence[GridPoint], options: SweepOptions) -> list[PreparedPoint]:
    """Every point prepared as its `eft-eval run` would be, sharing loaded tasks and judge checks."""
    from eft_eval.pipeline import Loaded, prepare
    from eft_eval.sweep._generation import PreparedPoint

    loaded = Loaded()
    return [PreparedPoint(point, prepare(run_config(point, options), loaded)) for point in points]


def list_commands(study: Study, options: SweepOptions) -> list[str]:
    """One `eft-eval run ...` command per grid point (of the shard), for any scheduler."""
    return [shlex.join(run_arguments(run_config(point, options), options))
            for point in shard_points(study.points, options.shard)]


def run_arguments(config: Any, options: SweepOptions) -> list[str]:
    """`eft-eval run` arguments reproducing `config` (judge settings that differ from the defaults)."""
    return run_command(config, [setting for setting in JUDGE_SETTINGS if setting.study], redact=False)


def run_sweep(study: Study, options: SweepOptions, analyze_only: bool = False,
              say: Callable[[str], None] | None = None) -> SweepResult:
    """Run (or with `analyze_only`, only analyse) the study's grid points into `options.output`."""
    from eft_eval.sweep._generation import generate_all

    say = say or (lambda line: print(line, file=sys.stderr))
    points = shard_points(study.points, options.shard)
    sweep = SweepFolder(options.output)
    failed: dict[str, str] = {}
    spent = 0.0  # what this sweep's runs paid for judging: the pairwise step has the rest of --budget
    if study.pairwise is not None:  # an unknown or pointwise judge is refused before any generation
        from eft_eval.judging import load_judges

        load_judges(study.pairwise.judges, list(options.include_paths), kind="pairwise")
    with sweep.lock("eft-eval sweep", options.shard):  # runs lock their own folders
        write_json(sweep.record, _sweep_record(study, options))
        if not analyze_only:
            prepared = prepare_points(points, options)
            generate_all(prepared, say, options.progress)
            failed, spent = _judge_points(study, prepared, options, say)
        finished, missing = _finished_and_missing(study, options)
        say(f"sweep {study.name}: {len(finished)}/{len(study.points)} runs finished"
            + (f"; missing: {', '.join(missing)}" if missing else ""))
        analysis = None
        pairwise: list[tuple[str, dict[str, Any]]] = []
        if options.analyze and (options.shard is None or analyze_only):
            analysis = analyze(study, options, finished, say)
            pairwise = compare_pairwise(study, options, finished, say, budget_spent=spent)
    return SweepResult(finished=finished, missing=missing, failed=failed, analysis=analysis, pairwise=pairwise)


def _judge_points(study: Study, points: Sequence[PreparedPoint], options: SweepOptions,
                  say: Callable[[str], None]) -> tuple[dict[str, str], float]:
    """Run (judge and aggregate) every grid point, in order; the points that failed, with why, and
    what the runs spent (or may still be billed) against `--budget`.

    `--budget` is for the whole sweep: each run may spend what the earlier ones left. In batch mode
    every point first submits its batches without waiting (so that they all progress on OpenAI's
    side at once, instead of one 24-hour window after another), then each run re-attaches to its
    batches and waits; until a run has its answers, its batches count at their worst-case cost.
    """
    pending: dict[str, float] = {}  # batch mode: submitted, not yet collected -> worst-case USD
    done: set[str] = set()
    if options.judge.mode == "batch" and len(points) > 1:
        say(f"sweep {study.name}: submitting every run's batches before waiting on any")
        for number, point in enumerate(points, start=1):
            try:
                _run_point(point, options, budget_spent=sum(pending.values()), submit_only=True)
                done.add(point.label)  # every answer was in the cache already
            except BatchesSubmitted as submitted:
                pending[point.label] = submitted.estimate_usd or 0.0
                say(f"sweep {study.name}: run {number}/{len(points)} {point.label}: {submitted}")
            except EFTEvalError as error:  # asked again below, when it may fit what is left
                if _open_batches(options, point):  # some went out before the error: they may be billed
                    pending[point.label] = (error.estimate_usd if isinstance(error, JudgingStopped) else None) or 0.0
                say(f"sweep {study.name}: run {point.label} not submitted: {error}")
    failed: dict[str, str] = {}
    spent = 0.0  # what this sweep's runs paid for new answers
    for number, point in enumerate(points, start=1):
        if point.label in done:
            continue
        committed = spent + sum(cost for label, cost in pending.items() if label != point.label)
        budget = options.judge.cost.budget
        say(f"sweep {study.name}: run {number}/{len(points)} {point.label}"
            + (f" (${budget - committed:.4f} of --budget left)" if budget is not None else ""))
        try:
            spent += _new_usd(_run_point(point, options, budget_spent=committed))
        except EFTEvalError as error:
            failed[point.label] = str(error)
            say(f"sweep {study.name}: run {point.label} failed: {error}")
            # What it paid stays paid; batches it submitted may still be billed, up to their worst case.
            spent += max(error.spent_usd if isinstance(error, JudgingStopped) else 0.0, pending.get(point.label, 0.0))
        pending.pop(point.label, None)
    return failed, spent + sum(pending.values())


def _open_batches(options: SweepOptions, point: PreparedPoint) -> bool:
    """Whether the point's run folder records batches that were submitted and not collected."""
    from eft_eval.judging import BatchState

    state = point.run.folder.batch_state
    try:
        return state.is_file() and bool(BatchState(state).open_batches())
    except EFTEvalError:  # an unreadable record: its run says so when it resumes
        return False


def _run_point(point: PreparedPoint, options: SweepOptions, budget_spent: float = 0.0,
               submit_only: bool = False) -> RunResult:
    """Judge and aggregate one prepared grid point (its generations done); with a budget, what the
    sweep has spent (or committed) counts against it."""
    from eft_eval.pipeline import run_prepared

    budget = point.run.config.judge.cost.budget
    return run_prepared(point.run, JudgeRunState(budget_spent if budget is not None else 0.0, submit_only), point.rows)


def _new_usd(result: Any) -> float:
    """What a finished run paid for new judge answers (0 when unpriced: then it had no budget)."""
    spent = result.results.get("cost", {}).get("new_usd")
    return spent if isinstance(spent, float) else 0.0


def cancel_sweep_batches(study: Study, options: SweepOptions,
                         say: Callable[[str], None] | None = None) -> SweepResult:
    """`sweep --judge-mode batch --cancel`: cancel the batches recorded in the runs (of the shard)
    that exist; nothing is generated, judged or analysed."""
    say = say or (lambda line: print(line, file=sys.stderr))
    with SweepFolder(options.output).lock("eft-eval sweep", options.shard):
        return _cancel_batches(study, shard_points(study.points, options.shard), options, say)


def _cancel_batches(study: Study, points: Sequence[GridPoint], options: SweepOptions,
                    say: Callable[[str], None]) -> SweepResult:
    from eft_eval.pipeline import cancel_run_batches

    cancelled: list[str] = []
    failed: dict[str, str] = {}
    for point in points:
        if not SweepFolder(options.output).run(point.label).batch_state.is_file():
            continue
        try:
            cancelled += cancel_run_batches(run_config(point, options))[1]
        except EFTEvalError as error:
            failed[point.label] = str(error)
            say(f"sweep {study.name}: cancelling the batches of {point.label} failed: {error}")
    say(f"sweep {study.name}: cancelled {len(cancelled)} "
        "batch(es)" + (f": {', '.join(cancelled)}" if cancelled else ""))
    finished, missing = _finished_and_missing(study, options)
    return SweepResult(finished=finished, missing=missing, failed=failed, analysis=None)


def _finished_and_missing(study: Study, options: SweepOptions) -> tuple[list[str], list[str]]:
    """Labels of the grid points whose run wrote its results, and of the others."""
    finished = [p.label for p in study.points if SweepFolder(options.output).run(p.label).results.is_file()]
    return finished, [p.label for p in study.points if p.label not in finished]


# -- analysis --------------------------------------------------------------------------------------

def analysis_inputs(study: Study, options: SweepOptions,
                    finished: Sequence[str]) -> tuple[dict[str, Path], dict[str, Any]]:
    """The runs and options `analyze_study` gets for the study's finished grid points."""
    done = [p for p in study.points if p.label in set(finished)]
    settings = {key: value for key, value in study.analysis.items() if key not in ("kind", "role", "group_by")}
    kind = study.analysis["kind"]
    if kind == "scaling":
        role, group_by = study.analysis["role"], list(study.analysis.get("group_by") or [])
        groups: dict[str, dict[str, Path]] = {}
        for point in done:
            name = "_".join(point.names[var] for var in group_by) or study.name
            groups.setdefault(name, {})[point.names[role]] = run_folder(options, point)
        # Normalized improvement needs both ends of its scale: a group without them waits.
        complete = {name: members for name, members in groups.items() if {"small-ft", "large-ft"} <= set(members)}
        runs = next(iter(complete.values()), {})
        return runs, {**settings, "groups": [{"name": name, "runs": members} for name, members in complete.items()]}
    runs = {point.label: run_folder(options, point) for point in done}
    points = {point.label: {var: _described(point, var) for var in point.values} for point in done}
    return runs, {**settings, "points": points}


def analyze(study: Study, options: SweepOptions, finished: Sequence[str],
            say: Callable[[str], None]) -> dict[str, Any] | None:
    """Run the study's analysis over the finished runs (if there are any and the analysis exists)."""
    if not finished:
        say(f"sweep {study.name}: no finished run to analyse yet")
        return None
    try:
        from eft_eval.analysis import analyze_study
    except ImportError:
        say(f"sweep {study.name}: the {study.analysis['kind']} analysis is not available in this version")
        return None
    runs, settings = analysis_inputs(study, options, finished)
    if not runs:
        say(f"sweep {study.name}: nothing to analyse yet (a scaling group needs its small-ft and large-ft runs)")
        return None
    output = SweepFolder(options.output).analysis
    result: dict[str, Any] = analyze_study(study.analysis["kind"], runs, settings, output)
    say(f"sweep {study.name}: {study.analysis['kind']} analysis of {len(finished)} runs in {output}")
    return result


def compare_pairwise(study: Study, options: SweepOptions, finished: Sequence[str],
                     say: Callable[[str], None], budget_spent: float = 0.0) -> list[tuple[str, dict[str, Any]]]:
    """The study's pairwise comparisons (`pairwise:`) of the finished points, each into its folder;
    a comparison whose reference has not finished waits for a later sweep. `--budget` is the whole
    sweep's: `budget_spent` (what its runs spent) and each comparison's spending count against it."""
    if study.pairwise is None:
        return []
    from eft_eval.analysis import pairwise

    done = set(finished)
    by_label = {point.label: point for point in study.points}
    written = []
    for comparison in study.pairwise.comparisons:
        runs = [by_label[label] for label in comparison.runs if label in done]
        name = f"pairwise{' ' + comparison.group if comparison.group else ''}"
        if comparison.reference not in done or not runs:
            say(f"sweep {study.name}: {name} waits: {comparison.reference} and at least one run to compare "
                "must have finished")
            continue
        reference = by_label[comparison.reference]
        output = SweepFolder(options.output).pairwise_folder(comparison.group)
        # The reference's judge settings (the study's `judge:`, e.g. the demo's local backend).
        config = with_values(options.judge, JUDGE_SETTINGS, reference.judge)
        results = pairwise([run_folder(options, point) for point in runs], run_folder(options, reference),
                           output, study.pairwise.judges, config, include_paths=list(options.include_paths),
                           round_robin=study.pairwise.round_robin, budget_spent=budget_spent)
        new = results.get("cost", {}).get("new_usd")
        budget_spent += new if isinstance(new, float) else 0.0
        say(f"sweep {study.name}: {name}: {len(runs)} run(s) against {reference.label} in {output}")
        written.append((str(output), results))
    return written


def _described(point: GridPoint, var: str) -> Any:
    """A grid value as an analysis reads it: numbers (alpha) as numbers, models by their label (70B)."""
    value = point.values[var]
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    return point.names[var]


def _sweep_record(study: Study, options: SweepOptions) -> dict[str, Any]:
    return {
        "study": study.name,
        "study_file": str(study.path.resolve()),
        "about": study.about,
        "analysis": study.analysis,
        **({"pairwise": study.pairwise.to_dict()} if study.pairwise is not None else {}),
        "variables": study.variables,
        "grid": study.grid,
        "points": [{"label": p.label, "run": str(run_folder(options, p)), "model": p.model, "settings": p.run,
                    "values": {var: _described(p, var) for var in p.values}} for p in study.points],
    }


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` -> (I, N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise EFTEvalError(f"--shard {text!r}: expected I/N, e.g. 2/8") from None
    if count < 1 or not 1 <= index <= count:
        raise EFTEvalError(f"--shard {text!r}: I must be between 1 and N")
    return index, count


__all__ = ["SweepOptions", "SweepResult", "cancel_sweep_batches", "analysis_inputs", "compare_pairwise",
           "list_commands", "parse_shard", "run_arguments", "run_config", "run_sweep", "shard_points"]
