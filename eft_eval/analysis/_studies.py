"""The study analyses as library calls that write their files: JSON, CSV, figures, a table.

    analyze_scaling({"small-ft": "runs/s", "large-ft": "runs/l", "up": "runs/u"}, output_dir="out")
    analyze_study("frontier", {"alpha=0": path0, ...}, {"x": "helpfulness", "y": "harm"}, Path("out"))

Each returns `{"kind", "data", "files", "table"}`: `data` is what OUT/<kind>.json holds
(docs/formats.md), `files` the paths written, `table` the text `eft-eval analyze` prints.
For plain data without files, call `scaling_analysis`, `frontier_analysis`, ... on `load_run`s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eft_eval.analysis import _render as render
from eft_eval.analysis._compare import compare_analysis
from eft_eval.analysis._files import write_analysis
from eft_eval.analysis._frontier import frontier_analysis
from eft_eval.analysis._judge_agreement import agreement_analysis, agreement_rows
from eft_eval.analysis._power import power_analysis
from eft_eval.analysis._runs import load_run, load_runs
from eft_eval.analysis._scaling import scaling_analysis
from eft_eval.analysis._top_p import top_p_analysis
from eft_eval.errors import EFTEvalError
from eft_eval.stats import DEFAULT_POWER, DEFAULT_SIGNIFICANCE, BootstrapSettings, check_power_settings

RunPaths = Mapping[str, str | Path] | Sequence[str | Path]
STUDY_KINDS = ("scaling", "frontier", "top_p")


def _finish(kind: str, data: dict[str, Any], rows: Sequence[Mapping[str, Any]], output_dir: str | Path,
            table: Callable[[Mapping[str, Any]], str], figure: Callable[[Mapping[str, Any], Path], list[Path]]
            ) -> dict[str, Any]:
    folder = Path(output_dir)
    files = write_analysis(folder, kind, data, rows)
    files += figure(data, folder)
    return {"kind": kind, "data": data, "files": [str(p) for p in files], "table": table(data)}


def analyze_scaling(
    runs: Mapping[str, str | Path] | None = None,
    output_dir: str | Path = "analysis",
    *,
    groups: Sequence[Mapping[str, Any]] | None = None,
    judges: Sequence[str] | None = None,
    settings: BootstrapSettings | None = None,
    include_paths: Sequence[str] = (),
) -> dict[str, Any]:
    """`runs` {role: path} (roles small-ft, large-ft, up, down) or `groups` [{name, runs: {role: path}}]."""
    loaded: list[tuple[str | None, dict[str, Any]]]
    if groups:
        loaded = [(str(g.get("name")), _role_runs(g.get("runs"), include_paths, f"group {g.get('name')!r}"))
                  for g in groups]
    elif runs:
        loaded = [(None, _role_runs(runs, include_paths, "scaling"))]
    else:
        raise EFTEvalError("scaling: give the runs ({role: run folder}) or groups of them")
    data = scaling_analysis(loaded, judges, settings)
    return _finish("scaling", data, data["rows"], output_dir, render.scaling_table, render.scaling_figure)


def _role_runs(runs: Any, include_paths: Sequence[str], where: str) -> dict[str, Any]:
    if not isinstance(runs, Mapping) or not runs:
        raise EFTEvalError(f"{where}: runs must map roles (small-ft, large-ft, up, down) to run folders")
    return {role: load_run(path, role, include_paths) for role, path in runs.items()}


def analyze_frontier(
    runs: RunPaths, x: str, y: str, output_dir: str | Path = "analysis", *,
    points: Mapping[str, Mapping[str, Any]] | None = None,
    settings: BootstrapSettings | None = None, include_paths: Sequence[str] = (),
) -> dict[str, Any]:
    data = frontier_analysis(load_runs(runs, include_paths), x, y, points, settings)
    return _finish("frontier", data, data["points"], output_dir, render.frontier_table, render.frontier_figure)


def analyze_top_p(
    runs: RunPaths, output_dir: str | Path = "analysis", *, judges: Sequence[str] | None = None,
    top_p: Mapping[str, float | None] | None = None, include_paths: Sequence[str] = (),
) -> dict[str, Any]:
    data = top_p_analysis(load_runs(runs, include_paths), judges, top_p)
    return _finish("top_p", data, data["rows"], output_dir, render.top_p_table, render.top_p_figure)


def analyze_compare(
    run_a: str | Path, run_b: str | Path, output_dir: str | Path = "analysis", *,
    judges: Sequence[str] | None = None, settings: BootstrapSettings | None = None, include_paths: Sequence[str] = (),
    only_same_prompts: bool = False,
) -> dict[str, Any]:
    """`only_same_prompts`: pair only prompts whose text is the same (default: refuse runs where any differs)."""
    a, b = load_runs([run_a, run_b], include_paths)
    data = compare_analysis(a, b, judges, settings, only_same_prompts=only_same_prompts)
    return _finish("compare", data, data["rows"], output_dir, render.compare_table, render.compare_figure)


def analyze_power(
    run_a: str | Path, run_b: str | Path, output_dir: str | Path = "analysis", *,
    judges: Sequence[str] | None = None, effect: float | None = None, power: float = DEFAULT_POWER,
    alpha: float = DEFAULT_SIGNIFICANCE, include_paths: Sequence[str] = (), only_same_prompts: bool = False,
) -> dict[str, Any]:
    """A pilot's minimum detectable difference per judge and, with `effect` (the judge's score units),
    the paired prompts it needs at `power` and two-sided `alpha` (`power_analysis`)."""
    check_power_settings(alpha, power, effect)  # a bad setting is the first error, before reading the runs
    a, b = load_runs([run_a, run_b], include_paths)
    data = power_analysis(a, b, judges, effect=effect, power=power, alpha=alpha, only_same_prompts=only_same_prompts)
    return _finish("power", data, data["rows"], output_dir, render.power_table, render.power_figure)


def analyze_judge_agreement(
    run_a: str | Path, run_b: str | Path, judge: str, output_dir: str | Path = "analysis", *,
    judge_b: str | None = None, threshold: float = 1.0, settings: BootstrapSettings | None = None,
    include_paths: Sequence[str] = (),
) -> dict[str, Any]:
    a, b = load_run(run_a, None, include_paths), load_run(run_b, None, include_paths)
    data = agreement_analysis(a, b, judge, judge_b, threshold, settings)
    return _finish("agreement", data, agreement_rows(data), output_dir, render.agreement_table, render.agreement_figure)


def analyze_study(kind: str, runs: Mapping[str, Path], options: Mapping[str, Any], output_dir: Path) -> dict[str, Any]:
    """The analysis a sweep runs after its grid (stable entry point).

    - `scaling`: `runs` keys are roles `small-ft`, `large-ft`, `up`, `down`; `options["groups"]`
      may instead give `[{"name": .., "runs": {role: path}}]` (one row each, plus the aggregate).
    - `frontier`: `runs` keys are point labels; `options` {"x": judge, "y": judge}, optional
      `points` {label: {"alpha": .., "base": ..}} overriding each run's run.json spec.
    - `top_p`: `runs` keys are labels; `top_p_weights` from run.json (`options["top_p"]` overrides).
    Common options: `judges` (list), `n_resamples`, `seed`, `confidence_level`, `include_paths`.
    Returns `{"kind", "data", "files", "table"}` (see the module docstring).
    """
    settings = BootstrapSettings(**{k: options[k] for k in ("n_resamples", "seed", "confidence_level") if k in options})
    include_paths = list(options.get("include_paths") or [])
    judges = options.get("judges")
    if kind == "scaling":
        return analyze_scaling(runs, output_dir, groups=options.get("groups"), judges=judges, settings=settings,
                               include_paths=include_paths)
    if kind == "frontier":
        if not options.get("x") or not options.get("y"):
            raise EFTEvalError("frontier: options must name the judges of both axes, {'x': judge, 'y': judge}")
        return analyze_frontier(runs, str(options["x"]), str(options["y"]), output_dir, points=options.get("points"),
                                settings=settings, include_paths=include_paths)
    if kind in ("top_p", "top-p"):
        return analyze_top_p(runs, output_dir, judges=judges, top_p=options.get("top_p"), include_paths=include_paths)
    raise EFTEvalError(f"unknown study analysis {kind!r} (known: {', '.join(STUDY_KINDS)})")
