"""Study plugin files: a task, its judges, shared run settings and a grid of model specs.

    study: frontier                      # the name `eft-eval sweep NAME` finds
    about: one line for `eft-eval list`
    run: {task: hh, judges: [helpfulness, harm], limit: 256, max_new_tokens: 256}
    judge: {backend: openai}             # optional judge settings (as the judge flags)
    variables: {chat: meta-llama/Llama-2-7b-chat-hf}    # {placeholders}; `--set NAME=VALUE`
    grid:                                # every combination is one run
      base: {7B: meta-llama/Llama-2-7b-hf, 70B: meta-llama/Llama-2-70b-hf}  # label: value
      alpha: {from: 0, to: 1, step: 0.1} # or a list [0, 0.5, 1]
    model: {base: "{base}", ft: "{chat}", ft2: "{chat}", ref: ..., alpha: "{alpha}"}
    label: "base={base}_alpha={alpha}"   # optional; the default names every grid variable
    analysis: {kind: frontier, x: helpfulness, y: harm}
    pairwise: {judges: [preference], against: "base=7B_alpha=0"}   # optional: see `_pairwise.py`

`{name}` is replaced by a grid value or a variable anywhere in `run`, `judge` and `model`; a
string that is exactly one placeholder takes the value itself (a number, or null for "unset").
`{query}` is left alone (prompt templates use it); `{smollm2_gguf}` is the offline
SmolLM2-135M-Instruct GGUF file. The task sits under `run:` rather than at the top: lm-eval
indexes every YAML file with a top-level `task:` in an include folder as a task of that name.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eft_eval.errors import EFTEvalError
from eft_eval.models import smollm2_gguf
from eft_eval.parsing import parse_bool
from eft_eval.pipeline import RUN_KEYS
from eft_eval.plugins import check_plugin_name, plugin_dirs, unrecognized_note, yaml_files
from eft_eval.sweep._grid import (
    DEFAULT_MAX_POINTS,
    Axis,
    check_size,
    grid_size,
    parse_axes,
    text,
)
from eft_eval.sweep._pairwise import StudyPairwise, parse_pairwise
from eft_eval.sweep._variables import apply_assignments

TOP_KEYS = ("study", "about", "run", "judge", "variables", "grid", "model", "label", "analysis", "pairwise")
ANALYSIS_KINDS = ("scaling", "frontier", "top_p")
RESERVED_PLACEHOLDERS = ("query", "response")
"""Left as they are: prompt formats and judge templates fill them in later."""
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._=+,-]+")


@dataclass(frozen=True)
class GridPoint:
    """One run of a study: its folder label, its grid values and what `eft-eval run` gets."""

    label: str
    values: dict[str, Any]
    """Grid variable -> value (a model id, a number, None)."""
    names: dict[str, str]
    """Grid variable -> the value's label (`70B` for a named value, `0.3` for a number)."""
    run: dict[str, Any]
    """Run settings (RUN_KEYS) after substitution; `task` always present."""
    model: str
    """The compact spec string (`eft-eval run --model`)."""
    judge: dict[str, Any] = field(default_factory=dict)
    """Judge settings (the study keys of `JUDGE_SETTINGS`) after substitution."""


@dataclass(frozen=True)
class Study:
    name: str
    path: Path
    about: str
    points: list[GridPoint]
    grid: dict[str, list[str]]
    """Grid variable -> value labels, in grid order."""
    analysis: dict[str, Any]
    """`kind` plus the analysis options given in the file."""
    variables: dict[str, Any]
    pairwise: StudyPairwise | None = None
    """The study's pairwise comparisons (`pairwise:`), if any."""


def study_folders(include_paths: Sequence[str | Path] = ()) -> list[Path]:
    """The built-in `studies/` folder and the include folders (which may hold tasks or judges too)."""
    return [folder for folder in plugin_dirs("studies", list(include_paths)) if folder.is_dir()]


def discover_studies(include_paths: Sequence[str | Path] = ()) -> dict[str, Path]:
    """Study name -> file, for every YAML file with a top-level `study:` key in the study folders."""
    found: dict[str, Path] = {}
    for folder in study_folders(include_paths):
        for path in yaml_files(folder):
            data = _read_yaml(path, quiet=True)
            if not isinstance(data, dict) or "study" not in data:
                continue
            name = str(data["study"])
            if name in found:
                raise EFTEvalError(f"study {name!r} is defined twice: in {found[name]} and in {path}")
            found[name] = path
    return found


def find_study(name_or_path: str, include_paths: Sequence[str | Path] = ()) -> Path:
    """A study file by name (`frontier`) or path (`my/study.yaml`)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise EFTEvalError(f"study file {candidate} does not exist")
        return candidate
    studies = discover_studies(include_paths)
    if name_or_path not in studies:
        raise EFTEvalError(f"unknown study {name_or_path!r}; available studies: {', '.join(sorted(studies))} "
                           "(or give a study YAML file; add your own folder with --include-path)"
                           + unrecognized_note(include_paths))
    return studies[name_or_path]


@dataclass(frozen=True)
class StudySummary:
    """What `eft-eval list studies` shows: the grid counted, never expanded."""

    name: str
    path: Path
    about: str
    axes: list[Axis]
    size: int
    """Grid points (the product of the axes' sizes)."""
    analysis_kind: str


def summarize_study(path: str | Path) -> StudySummary:
    """A study's name, grid size and analysis, checked as far as that needs, without building points."""
    path = Path(path)
    data = _study_mapping(path)
    bad = _complaint(path)
    axes = parse_axes(_mapping(data.get("grid"), "grid", bad), bad)
    if "{smollm2_gguf}" in str(data.get("model")):
        # A study that cannot run here says why in the listing (the package to install).
        smollm2_gguf("this study's model")
    analysis = data.get("analysis")
    kind = analysis.get("kind") if isinstance(analysis, dict) else None
    return StudySummary(name=str(data.get("study")), path=path, about=str(data.get("about") or ""), axes=axes,
                        size=grid_size(axes), analysis_kind=str(kind))


def load_study(path: str | Path, overrides: Mapping[str, Any] | None = None,
               set_variables: Mapping[str, Any] | None = None, max_points: int = DEFAULT_MAX_POINTS) -> Study:
    """Read a study file and expand its grid.

    `overrides` replace run settings (the sweep's run flags, e.g. `limit`); `set_variables`
    replace variables (`--set NAME=VALUE`, the text typed: see `_variables.py`). A grid of more
    than `max_points` points is refused before it is expanded. Every problem is one line naming
    the file and the key.
    """
    path = Path(path)
    data = _study_mapping(path)
    bad = _complaint(path)

    unknown = [key for key in data if key not in TOP_KEYS]
    if unknown:
        raise bad(repr(unknown[0]), f"is not a study key (known: {', '.join(TOP_KEYS)})")
    for key in ("study", "run", "grid", "model", "analysis"):
        if key not in data:
            raise bad(repr(key), "is missing")
    check_plugin_name(str(data["study"]), "study", str(path))  # it names the default output folder
    run = _mapping(data["run"], "run", bad)
    for key in run:
        if key not in RUN_KEYS:
            raise bad(f"run.{key}", f"is not a run setting (known: {', '.join(RUN_KEYS)})")
    if "task" not in run:
        raise bad("run.task", "is missing")
    run.update({key: value for key, value in (overrides or {}).items() if value is not None})
    judge = _mapping(data.get("judge") or {}, "judge", bad)
    from eft_eval.judging import JUDGE_SETTINGS  # here: listing studies needs no judging

    judge_keys = [setting.dest for setting in JUDGE_SETTINGS if setting.study]
    for key in judge:
        if key not in judge_keys:
            raise bad(f"judge.{key}", f"is not a judge setting (known: {', '.join(judge_keys)})")
    variables = apply_assignments(_mapping(data.get("variables") or {}, "variables", bad), set_variables or {}, path)
    axes = parse_axes(_mapping(data["grid"], "grid", bad), bad)
    check_size(axes, max_points, path)  # before a single point is built
    grid = {axis.name: axis.values() for axis in axes}
    clash = sorted(set(grid) & set(variables))
    if clash:
        raise bad(f"grid.{clash[0]}", "is also a variable: give it one meaning")
    if not isinstance(data["model"], (str, dict)):
        raise bad("model", "must be a spec string or a mapping of spec keys")
    analysis = _analysis(data["analysis"], set(grid), bad)
    label_template = data.get("label")
    if label_template is not None and not isinstance(label_template, str):
        raise bad("label", "must be a string with {placeholders}")

    points: list[GridPoint] = []
    seen: dict[str, dict[str, str]] = {}
    for combination in itertools.product(*(list(values.items()) for values in grid.values())):
        names = {var: name for var, (name, _) in zip(grid, combination)}
        values = {var: value for var, (_, value) in zip(grid, combination)}
        context = _Context(path, {**variables, **values}, names)
        point_run = context.fill(run, "run")
        label = _safe_label(context.fill(label_template, "label") if label_template
                            else "_".join(f"{var}={name}" for var, name in names.items()))
        if label in seen:
            raise bad("label",
                      f"gives {label!r} to two grid points ({seen[label]} and {names}): name every grid variable")
        seen[label] = names
        model = _model_string(context.fill(data["model"], "model"), path, label)
        point_judge = context.fill(judge, "judge")
        if "show_query" in point_judge:  # `bool("false")` is True: booleans are parsed strictly
            point_judge["show_query"] = parse_bool(point_judge["show_query"], "judge.show_query", str(path))
        points.append(GridPoint(label=label, values=values, names=names, run=point_run, model=model,
                                judge=point_judge))
    labels = {var: list(values) for var, values in grid.items()}
    return Study(name=str(data["study"]), path=path, about=str(data.get("about") or ""), points=points,
                 grid=labels, analysis=analysis, variables=variables,
                 pairwise=parse_pairwise(data.get("pairwise"), points, labels, bad))


class _Context:
    """Fills `{placeholders}` from grid values and variables; names unknown ones with the file."""

    def __init__(self, path: Path, values: dict[str, Any], names: dict[str, str]) -> None:
        self.path, self.values, self.names = path, values, names

    def lookup(self, name: str, where: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name == "smollm2_gguf":
            return str(smollm2_gguf("this study's model"))
        known = ", ".join(sorted([*self.values, "smollm2_gguf"]))
        raise EFTEvalError(f"{self.path}: {where}: unknown placeholder {{{name}}} (known: {known})")

    def fill(self, value: Any, where: str) -> Any:
        if isinstance(value, Mapping):
            return {key: self.fill(item, f"{where}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self.fill(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, str):
            return value
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) not in RESERVED_PLACEHOLDERS:
            return self.lookup(whole.group(1), where)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in RESERVED_PLACEHOLDERS:
                return match.group(0)
            # In a label, a named grid value shows as its name (`70B`), not as its model id.
            if where == "label" and name in self.names:
                return self.names[name]
            return text(self.lookup(name, where))

        return _PLACEHOLDER.sub(replace, value)


def _study_mapping(path: Path) -> dict[str, Any]:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise EFTEvalError(f"{path}: a study file must be a mapping, got {type(data).__name__}")
    return data


def _complaint(path: Path) -> Any:
    def bad(key: str, why: str) -> EFTEvalError:
        return EFTEvalError(f"{path}: {key} {why}")

    return bad


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping.

    Plain YAML keeps the last of two `alpha:` entries under `grid:` (or of two `variables:`
    blocks) silently, so a study would run a grid the user did not write.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise EFTEvalError(f"line {line}: key {key!r} is given twice in one mapping: keep one")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def _read_yaml(path: Path, quiet: bool = False) -> Any:
    # Discovery (`quiet`) reads leniently, so a study with a key written twice is still found by
    # name and then refused with the line at fault.
    loader = yaml.SafeLoader if quiet else _UniqueKeyLoader
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, EFTEvalError) as error:
        if quiet:
            return None
        raise EFTEvalError(f"{path}: cannot read the study: {error}".replace("\n", " ")) from None


def _mapping(value: Any, key: str, bad: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(key, f"must be a mapping, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _analysis(raw: Any, grid: set[str], bad: Any) -> dict[str, Any]:
    analysis = _mapping(raw, "analysis", bad)
    kind = analysis.get("kind")
    if kind not in ANALYSIS_KINDS:
        raise bad("analysis.kind", f"{kind!r} is not one of {', '.join(ANALYSIS_KINDS)}")
    if kind == "scaling":
        role = analysis.get("role")
        if role not in grid:
            raise bad("analysis.role", f"must name the grid variable holding small-ft/large-ft/up/down, got {role!r}")
        for key in analysis.get("group_by") or []:
            if key not in grid:
                raise bad("analysis.group_by", f"names {key!r}, which is not a grid variable")
    if kind == "frontier":
        for key in ("x", "y"):
            if not isinstance(analysis.get(key), str):
                raise bad(f"analysis.{key}", "must name a judge")
    return analysis


def _model_string(model: Any, path: Path, label: str) -> str:
    """The filled `model` as a compact spec string, checked by the spec parser."""
    from eft_eval.models import join_compact, parse_spec

    if isinstance(model, dict):
        spec = join_compact({key: text(value) for key, value in model.items() if value is not None})
    else:
        spec = str(model)
    try:
        parse_spec(spec)
    except EFTEvalError as error:
        raise EFTEvalError(f"{path}: model of grid point {label}: {error}") from None
    return spec


def _safe_label(text: str) -> str:
    """A folder name: characters outside letters, digits and `._=+,-` become `-`."""
    label = _LABEL_UNSAFE.sub("-", text).strip("-.")
    if not label:
        raise EFTEvalError(f"grid point label {text!r} has no usable characters")
    return label


__all__ = ["GridPoint", "Study", "StudySummary", "discover_studies", "find_study", "load_study",
           "study_folders", "summarize_study"]
