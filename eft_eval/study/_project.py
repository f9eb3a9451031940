"""A human-study project on disk: a complete Potato project plus eft-eval's manifest.

Layout of a project folder:

    config.yaml            Potato config (from the template; paths relative to the folder)
    data/items.jsonl       what annotators see: id, query, response -- nothing else, because
                           Potato hands every field of an item to the browser
    instructions.md        the annotator instructions (also inlined in config.yaml)
    study.json             eft-eval's manifest: items with the judge's hidden labels, the
                           selection (seed, source file, exclusions), the questions
    annotation_output/     written by Potato: one folder per annotator with user_state.json
    labels.jsonl           written by `eft-eval human-study import`
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from eft_eval import __version__
from eft_eval.errors import EFTEvalError
from eft_eval.fileio import (
    LOCK_FILE,
    current_umask,
    iter_jsonl,
    read_json,
    refuse_overwrite,
    write_json,
    write_jsonl,
    write_text_atomic,
)
from eft_eval.locking import lock_folder
from eft_eval.parsing import parse_number
from eft_eval.study._templates import LabelQuestions, StudyTemplate

CONFIG_FILE = "config.yaml"
ITEMS_FILE = "data/items.jsonl"
INSTRUCTIONS_FILE = "instructions.md"
MANIFEST_FILE = "study.json"
OUTPUT_DIR = "annotation_output"
LABELS_FILE = "labels.jsonl"

ProjectKind = Literal["annotation", "adjudication"]


@dataclass(frozen=True)
class StudyItem:
    """One item of a study, with what annotators must not see."""

    item_id: str
    query: str
    response: str
    judge_label: bool
    """The judge's "any factual error" label."""
    judge_score: float | None
    source: dict[str, Any] = field(default_factory=dict)
    """Where the response came from: samples file line, doc_id, task, model."""
    human_label: bool | None = None
    """Adjudication projects only: the crowd's majority label being checked."""
    jury_scores: dict[str, float | None] | None = None
    """A jury's judge: each model's own score (None: it abstained or failed). Absent otherwise."""


@dataclass(frozen=True)
class StudyManifest:
    """Everything eft-eval needs to read a project's annotations back (`study.json`)."""

    kind: ProjectKind
    template: str
    questions: LabelQuestions
    items: list[StudyItem]
    annotators_per_item: int
    judge: str
    error_threshold: float
    seed: int
    selection: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    """Adjudication projects: the annotation project they were built from."""
    created_by: str = f"eft-eval {__version__}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for item in data["items"]:  # a single-model judge's study.json is as before: no jury key
            if item["jury_scores"] is None:
                del item["jury_scores"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyManifest:
        fields = dict(data)
        fields["questions"] = LabelQuestions(**fields["questions"])
        fields["items"] = [StudyItem(**item) for item in fields["items"]]
        return cls(**fields)


@dataclass(frozen=True)
class StudyProject:
    """A loaded project folder."""

    path: Path
    manifest: StudyManifest

    @property
    def items_by_id(self) -> dict[str, StudyItem]:
        return {item.item_id: item for item in self.manifest.items}

    @property
    def output_dir(self) -> Path:
        return self.path / OUTPUT_DIR

    @property
    def labels_file(self) -> Path:
        return self.path / LABELS_FILE

    @property
    def manifest_file(self) -> Path:
        return self.path / MANIFEST_FILE


def potato_config(
    template: StudyTemplate,
    *,
    title: str,
    annotators_per_item: int,
    items_per_annotator: int,
    seed: int,
) -> dict[str, Any]:
    """The template's Potato config with this project's paths and numbers filled in."""
    config = copy.deepcopy(template.potato_config)
    config.update(
        {
            "annotation_task_name": title,
            # Relative paths keep the project folder movable: Potato resolves task_dir against the
            # config file and everything else against task_dir.
            "task_dir": ".",
            "data_files": [ITEMS_FILE],
            "output_annotation_dir": f"{OUTPUT_DIR}/",
            "num_annotators_per_item": annotators_per_item,
            "max_annotations_per_user": items_per_annotator,
            "random_seed": seed,
            "annotation_instructions": template.instructions,
        }
    )
    config.pop("max_annotations_per_item", None)  # deprecated spelling; Potato refuses both at once
    return config


def write_project(
    out: Path,
    template: StudyTemplate,
    manifest: StudyManifest,
    *,
    items_per_annotator: int | None = None,
    force: bool = False,
    sources: Sequence[Path] = (),
) -> StudyProject:
    """Write a complete Potato project for `manifest.items` under `out`.

    `sources` are what the project is made from (the samples file, the annotation project): `out`
    may not hold them, since --force would delete them.
    """
    if not manifest.items:
        raise EFTEvalError(f"{out}: refusing to write a project with no items")
    if manifest.annotators_per_item < 1:
        raise EFTEvalError(f"annotators per item must be at least 1, got {manifest.annotators_per_item}")
    parse_number(manifest.error_threshold, "error_threshold", f"{out}: study manifest")  # JSON holds no nan
    _check_replaceable(out, force, sources)
    if not force:  # refused before a lock file is put in someone's folder
        refuse_overwrite(out, False, "a project folder")
    # One writer per project folder (a second prepare, or prepare --force while it is served).
    with lock_folder(out, "human-study project"):
        if not force:
            refuse_overwrite(out, False, "a project folder")
        config = potato_config(
            template,
            title=template.title,
            annotators_per_item=manifest.annotators_per_item,
            items_per_annotator=items_per_annotator or len(manifest.items),
            seed=manifest.seed,
        )
        # Built whole beside `out`, then moved in: a failure half-way leaves no half project (which
        # the corrected command would then refuse to replace) and, with --force, the old one intact.
        target = out.resolve()  # `--out .` has no name of its own to put the staging folder beside
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        try:
            _write_files(staging, template, manifest, config)
            if force:
                refuse_overwrite(out, True, "a project folder")
            _move_into_place(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return StudyProject(out, manifest)


def _check_replaceable(out: Path, force: bool, sources: Sequence[Path]) -> None:
    """--force replaces a project, never a folder of other files (`--out .` once emptied the
    current folder) nor the files the project is being made from."""
    target = out.resolve()
    for source in sources:
        if source.resolve().is_relative_to(target):
            raise EFTEvalError(f"{out}: holds {source}, which this project is made from; choose another --out")
    if force and out.is_dir() and not (out / MANIFEST_FILE).is_file() and any(
            p.name != LOCK_FILE for p in out.iterdir()):
        raise EFTEvalError(f"{out}: is not a human-study project (no {MANIFEST_FILE}); --force only replaces a "
                           "project folder: choose another --out")


def _write_files(folder: Path, template: StudyTemplate, manifest: StudyManifest, config: dict[str, Any]) -> None:
    os.chmod(folder, 0o777 & ~current_umask())  # mkdtemp's 0700 would outlive the rename
    header = f"# Potato project written by {manifest.created_by} from template {template.name!r}.\n"
    write_text_atomic(folder / CONFIG_FILE, header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    write_jsonl(
        folder / ITEMS_FILE,
        [{"id": item.item_id, "query": item.query, "response": item.response} for item in manifest.items],
    )
    write_text_atomic(folder / INSTRUCTIONS_FILE, template.instructions)
    (folder / OUTPUT_DIR).mkdir()
    write_json(folder / MANIFEST_FILE, manifest.to_dict())


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename `staging` onto `out`, which holds only the lock file this process holds.

    A folder can only be renamed onto an empty one, so the lock file goes along first: a second
    name for it inside `staging` keeps the same inode, and so the same lock, under `out`.
    """
    lock = out / LOCK_FILE
    try:
        if Path.cwd().is_relative_to(out.resolve()):
            raise OSError("the current folder would be replaced, and the shell's with it")
        os.link(lock, staging / LOCK_FILE)
        lock.unlink()
        os.rename(staging, out)
        return
    except OSError:  # no hard links, `out` is a symlink or the current folder: entry by entry, the manifest last
        if not lock.exists():
            os.link(staging / LOCK_FILE, lock)
        (staging / LOCK_FILE).unlink(missing_ok=True)
    for entry in sorted(staging.iterdir(), key=lambda p: p.name == MANIFEST_FILE):
        os.replace(entry, out / entry.name)


def load_project(path: Path) -> StudyProject:
    """Load a project folder written by `write_project`, checking it is usable."""
    manifest_file = path / MANIFEST_FILE
    if not manifest_file.is_file():
        raise EFTEvalError(f"{path}: not a human-study project (no {MANIFEST_FILE}); create one with `eft-eval "
                           "human-study prepare`")
    data = read_json(manifest_file)
    try:
        manifest = StudyManifest.from_dict(data)
    except (KeyError, TypeError) as error:
        raise EFTEvalError(f"{manifest_file}: malformed manifest ({error})") from None
    if not manifest.items:
        raise EFTEvalError(f"{manifest_file}: the project has no items (empty project)")
    shown = {str(record.get("id")) for _, record in iter_jsonl(path / ITEMS_FILE)}
    missing = [item.item_id for item in manifest.items if item.item_id not in shown]
    if missing:
        raise EFTEvalError(f"{path / ITEMS_FILE}: item {missing[0]!r} of {MANIFEST_FILE} is not in the data file")
    return StudyProject(path, manifest)
