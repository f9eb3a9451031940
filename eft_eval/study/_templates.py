"""Potato project templates from the `human_study/` plugin folders.

A template folder holds `potato.yaml` (a Potato config without the per-project paths),
`study.yaml` (how eft-eval reads the answers) and the annotator instructions. Users add their
own folders with `--include-path`; a later folder's template of the same name wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eft_eval.errors import EFTEvalError
from eft_eval.plugins import plugin_dirs

DEFAULT_TEMPLATE = "factuality"
DEFAULT_ADJUDICATION_TEMPLATE = "factuality_adjudication"


@dataclass(frozen=True)
class LabelQuestions:
    """The two questions every template asks, and how their answers reduce to "any error"."""

    count_question: str
    """Radio question whose labels count factual errors."""
    count_labels: dict[str, int]
    """Label -> number of errors it stands for."""
    yesno_question: str
    """Radio question asking whether there is any factual error."""
    yes_label: str = "yes"
    no_label: str = "no"


@dataclass(frozen=True)
class StudyTemplate:
    """One template folder, loaded and checked."""

    name: str
    path: Path
    title: str
    questions: LabelQuestions
    instructions: str
    potato_config: dict[str, Any] = field(repr=False)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EFTEvalError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise EFTEvalError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise EFTEvalError(f"{path}: expected a YAML mapping")
    return data


def _radio_labels(config: dict[str, Any], name: str, source: Path) -> list[str]:
    for scheme in config.get("annotation_schemes") or []:
        if isinstance(scheme, dict) and scheme.get("name") == name:
            if scheme.get("annotation_type") != "radio":
                raise EFTEvalError(f"{source}: question {name!r} must be a radio question")
            return [str(label) for label in scheme.get("labels") or []]
    raise EFTEvalError(f"{source}: no annotation scheme named {name!r}")


def _parse_questions(spec: dict[str, Any], config: dict[str, Any], folder: Path) -> LabelQuestions:
    study_file, potato_file = folder / "study.yaml", folder / "potato.yaml"
    try:
        questions = LabelQuestions(
            count_question=str(spec["count_question"]),
            count_labels={str(k): int(v) for k, v in dict(spec["count_labels"]).items()},
            yesno_question=str(spec["yesno_question"]),
            yes_label=str(spec.get("yes_label", "yes")),
            no_label=str(spec.get("no_label", "no")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise EFTEvalError(f"{study_file}: bad or missing field ({error})") from None
    # The two files must describe the same questions, or answers would be misread silently.
    if sorted(_radio_labels(config, questions.count_question, potato_file)) != sorted(questions.count_labels):
        raise EFTEvalError(f"{study_file}: count_labels do not match the labels of {questions.count_question!r} "
                           f"in {potato_file}")
    yes_no = _radio_labels(config, questions.yesno_question, potato_file)
    if sorted(yes_no) != sorted([questions.yes_label, questions.no_label]):
        raise EFTEvalError(f"{study_file}: yes/no labels do not match {questions.yesno_question!r} in {potato_file}")
    return questions


def find_template(name: str, include_paths: list[str | Path] | None = None) -> Path:
    """The folder of template `name`; the last matching plugin folder wins."""
    found = [d / name for d in plugin_dirs("human_study", include_paths) if (d / name / "potato.yaml").is_file()]
    if not found:
        searched = ", ".join(str(d) for d in plugin_dirs("human_study", include_paths))
        raise EFTEvalError(f"human-study template {name!r} not found (searched: {searched})")
    return found[-1]


def load_template(name: str, include_paths: list[str | Path] | None = None) -> StudyTemplate:
    """Load and check one template folder."""
    folder = find_template(name, include_paths)
    config = _load_yaml(folder / "potato.yaml")
    spec = _load_yaml(folder / "study.yaml")
    questions = _parse_questions(spec, config, folder)
    instructions_file = folder / str(spec.get("instructions", "instructions.md"))
    try:
        instructions = instructions_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EFTEvalError(f"{instructions_file}: instructions file not found") from None
    return StudyTemplate(
        name=name,
        path=folder,
        title=str(spec.get("title", name)),
        questions=questions,
        instructions=instructions,
        potato_config=config,
    )
