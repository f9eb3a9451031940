"""Read and check Potato's annotation output for a project.

Potato 2.x always writes one state file per annotator, `annotation_output/<user>/user_state.json`
(its CSV/JSONL exports are optional and derived from the same state). Its field
`instance_id_to_label_to_value` maps item id -> [[{"schema": question, "name": label}, value], ...]
and `instance_id_ordering` lists the items assigned to the annotator. We read those two fields
only, and check every answer against the project before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import read_json
from eft_eval.study._project import StudyProject
from eft_eval.study._templates import LabelQuestions

STATE_FILE = "user_state.json"


@dataclass(frozen=True)
class Answer:
    """One annotator's answers on one item."""

    annotator: str
    item_id: str
    count_label: str
    """The label picked for the number-of-errors question, e.g. "3 or more"."""
    error_count: int
    yes_no: str
    """The label picked for the yes/no question."""
    any_error_by_count: bool
    any_error_by_yes_no: bool

    @property
    def consistent(self) -> bool:
        """Whether the two questions reduce to the same "any factual error" label."""
        return self.any_error_by_count == self.any_error_by_yes_no


@dataclass(frozen=True)
class Skipped:
    """An assigned item left out because the annotator did not finish it (--allow-partial)."""

    annotator: str
    item_id: str
    reason: str


@dataclass(frozen=True)
class Unfinished:
    """An annotator who stopped before their assigned count (Potato's `max_assignments`)."""

    annotator: str
    answered: int
    """Items with a complete answer."""
    assigned: int
    """Items the annotator was to do: `max_assignments`, less what no one could give them any more."""
    path: Path


@dataclass(frozen=True)
class AnnotationImport:
    """All complete answers of a project, and what was left out."""

    answers: list[Answer]
    skipped: list[Skipped] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    unfinished: list[Unfinished] = field(default_factory=list)
    """Annotators imported (with `allow_partial`) although they did not do their assigned count."""


def state_files(project: StudyProject) -> list[Path]:
    """Every annotator's state file, in annotator-name order."""
    if not project.output_dir.is_dir():
        return []
    found = sorted(p / STATE_FILE for p in project.output_dir.iterdir() if (p / STATE_FILE).exists())
    for path in found:
        if not path.is_file():  # never skipped silently: that annotator's work would vanish
            raise EFTEvalError(f"{path}: is a folder, not a Potato state file; move it away or restore the file")
    return found


def _labels_by_question(path: Path, item_id: str, entries: Any) -> dict[str, list[str]]:
    if not isinstance(entries, list):
        raise EFTEvalError(f"{path}: item {item_id!r}: expected a list of [label, value] pairs, got "
                           f"{type(entries).__name__}")
    chosen: dict[str, list[str]] = {}
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], dict) and "schema" in entry[0]
                and "name" in entry[0]):
            raise EFTEvalError(f"{path}: item {item_id!r}: malformed label entry {entry!r}")
        chosen.setdefault(str(entry[0]["schema"]), []).append(str(entry[0]["name"]))
    return chosen


def _answer(path: Path, annotator: str, item_id: str, chosen: dict[str, list[str]],
            questions: LabelQuestions) -> Answer | str:
    """The answer on one item, or the reason it is incomplete. Contradictions are errors."""
    count = chosen.get(questions.count_question, [])
    yes_no = chosen.get(questions.yesno_question, [])
    for question, labels, allowed in (
        (questions.count_question, count, list(questions.count_labels)),
        (questions.yesno_question, yes_no, [questions.yes_label, questions.no_label]),
    ):
        if len(labels) > 1:
            raise EFTEvalError(f"{path}: item {item_id!r}: several answers to {question!r}: {labels}")
        if labels and labels[0] not in allowed:
            raise EFTEvalError(f"{path}: item {item_id!r}: {labels[0]!r} is not an answer to {question!r} (expected "
                               f"one of {allowed})")
    missing = [q for q, labels in ((questions.count_question, count), (questions.yesno_question, yes_no)) if not labels]
    if missing:
        return f"no answer to {' and '.join(repr(q) for q in missing)}"
    error_count = questions.count_labels[count[0]]
    return Answer(
        annotator=annotator,
        item_id=item_id,
        count_label=count[0],
        error_count=error_count,
        yes_no=yes_no[0],
        any_error_by_count=error_count >= 1,
        any_error_by_yes_no=yes_no[0] == questions.yes_label,
    )


def read_state_file(path: Path, project: StudyProject) -> tuple[str, list[Answer], list[Skipped]]:
    """One annotator's complete answers and unfinished items; bad content is an error naming both."""
    state = read_json(path)
    if not isinstance(state, dict):
        raise EFTEvalError(f"{path}: malformed Potato state file (expected a JSON object)")
    annotator = str(state.get("user_id") or path.parent.name)
    labels = state.get("instance_id_to_label_to_value")
    ordering = state.get("instance_id_ordering", [])
    if not isinstance(labels, dict) or not isinstance(ordering, list):
        raise EFTEvalError(f"{path}: malformed Potato state file (no instance_id_to_label_to_value / "
                           "instance_id_ordering)")
    items = project.items_by_id
    for item_id in [*labels, *ordering]:
        if str(item_id) not in items:
            raise EFTEvalError(f"{path}: item {str(item_id)!r} is not in the project {project.path} (annotations from "
                               "another project?)")
    answers: list[Answer] = []
    skipped: list[Skipped] = []
    # Assigned items first, in the annotator's order, then any answered item Potato did not list.
    for item_id in dict.fromkeys([*map(str, ordering), *map(str, labels)]):
        chosen = _labels_by_question(path, item_id, labels.get(item_id, []))
        result = _answer(path, annotator, item_id, chosen, project.manifest.questions)
        if isinstance(result, Answer):
            answers.append(result)
        else:
            skipped.append(Skipped(annotator, item_id, result))
    return annotator, answers, skipped


def _max_assignments(path: Path, state: dict[str, Any]) -> int | None:
    """Potato's per-annotator quota (`max_assignments`); None when unlimited or absent."""
    value = state.get("max_assignments")
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, int):
        raise EFTEvalError(f"{path}: max_assignments must be a whole number, got {value!r}")
    return value if value > 0 else None


def _unfinished(project: StudyProject, files: list[Path], answered: dict[Path, int]) -> list[Unfinished]:
    """Annotators who did fewer items than Potato would have given them.

    Potato hands out items a few at a time, so an annotator who stops early may hold only the items
    they did: their state file then looks complete. What they were to do is `max_assignments` (the
    project's items per annotator), capped by the items that were still open to them, i.e. items
    they never saw that fewer than `annotators_per_item` annotators saw.
    """
    states = {path: read_json(path) for path in files}  # checked by read_state_file already
    seen = {path: {str(i) for i in [*state.get("instance_id_ordering", []), *state["instance_id_to_label_to_value"]]}
            for path, state in states.items()}
    coverage: dict[str, int] = {}
    for items in seen.values():
        for item_id in items:
            coverage[item_id] = coverage.get(item_id, 0) + 1
    per_item = project.manifest.annotators_per_item
    found = []
    for path, state in states.items():
        quota = _max_assignments(path, state)
        if quota is None:
            continue
        quota = min(quota, len(project.manifest.items))
        still_open = sum(1 for item in project.manifest.items
                         if item.item_id not in seen[path] and coverage.get(item.item_id, 0) < per_item)
        assigned = len(seen[path]) + min(max(quota - len(seen[path]), 0), still_open)
        if answered[path] < assigned:
            found.append(Unfinished(str(state.get("user_id") or path.parent.name), answered[path], assigned, path))
    return found


def read_annotations(project: StudyProject, *, allow_partial: bool = False) -> AnnotationImport:
    """Every annotator's complete answers. An annotator who left assigned items unanswered, or who
    stopped before their assigned count (Potato's `max_assignments`), is an error naming the file
    and the counts, unless `allow_partial` (then only their complete items are imported)."""
    files = state_files(project)
    if not files:
        raise EFTEvalError(f"{project.output_dir}: no annotations found (no <annotator>/{STATE_FILE}); has anyone "
                           "annotated yet?")
    answers: list[Answer] = []
    skipped: list[Skipped] = []
    answered: dict[Path, int] = {}
    for path in files:
        annotator, file_answers, file_skipped = read_state_file(path, project)
        answered[path] = len(file_answers)
        if file_skipped and not allow_partial:
            first = file_skipped[0]
            total = len(file_answers) + len(file_skipped)
            raise EFTEvalError(
                f"{path}: annotator {annotator!r} finished {len(file_answers)} of {total} assigned items; "
                f"item {first.item_id!r} has {first.reason}. Wait for them to finish, or pass --allow-partial "
                f"to import complete items only"
            )
        answers.extend(file_answers)
        skipped.extend(file_skipped)
    unfinished = _unfinished(project, files, answered)
    if unfinished and not allow_partial:
        stopped = unfinished[0]
        raise EFTEvalError(
            f"{stopped.path}: annotator {stopped.annotator!r} finished {stopped.answered} of {stopped.assigned} "
            "assigned items "
            f"(max_assignments); wait for them to finish, or pass --allow-partial to import complete items only"
        )
    if not answers:
        raise EFTEvalError(f"{project.output_dir}: no item has a complete answer yet")
    return AnnotationImport(answers, skipped, files, unfinished)
