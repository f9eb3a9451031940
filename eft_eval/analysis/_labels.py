"""Human labels for a run's items, read for `analyze calibrated`: a human-study project's labels or any JSONL.

Two kinds of file:

- any JSONL of `{"doc_id": ..., "label": ...}`: the label is a number (a score on the judge's
  scale, say) or a boolean ("any error"), one kind per file; `null` means not labelled. Whoever
  wrote it vouches that the labelled items were drawn at random from the run's items.
- a human-study project's `labels.jsonl` (or the project folder): read with the project's
  `study.json` (docs/formats.md), which maps each item to the `doc_id`, model and response it was
  drawn from. `human-study prepare` draws its items uniformly at random (without replacement,
  seeded) from the judged responses of the samples file, or of one model in it (`--model`, or the
  model picked by `--target-error-rate`: one model, not a stratified draw): within a model the
  labelled items are a random subset, so items of other models are left out and counted. An
  adjudication project holds only the judge-human disagreements, chosen by the judge's own verdict:
  not a random sample, refused.

The study's files are read as files (this package does not import the study package, which sits
beside it); `eft_eval.study` writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError, short_repr
from eft_eval.fileio import iter_jsonl, read_json

STUDY_MANIFEST = "study.json"
STUDY_LABELS = "labels.jsonl"
RANDOM_SAMPLE_NEEDED = ("the labelled items are drawn at random from the run's items (a uniform random subset "
                        "of the items the judge scored)")
"""What prediction-powered inference needs: `PPI is valid only if ...`."""


@dataclass(frozen=True)
class HumanLabels:
    """Labels keyed by the run's prompt id (`doc:<doc_id>`), with where each came from."""

    path: Path
    labels: dict[str, float]
    """Prompt id -> label (booleans as 1.0 / 0.0)."""
    lines: dict[str, int]
    """Prompt id -> line of `path` holding its label."""
    boolean: bool
    """The labels are "any error" booleans (the judge's score is reduced by a threshold)."""
    source: str
    """"human-study project" or "jsonl"."""
    n_without_label: int = 0
    """Records with no label (a tie, nobody annotated, or `null`)."""
    threshold: float | None = None
    """The study's error threshold (its judge's "any error": score >= threshold)."""
    responses: dict[str, str] = field(default_factory=dict)
    """A study's prompt id -> the response the annotators read (checked against the run's)."""
    item_ids: dict[str, str] = field(default_factory=dict)
    n_other_model: int = 0
    """A study's items drawn from another model's responses than the run's: left out."""


def read_human_labels(path: str | Path, model: str | None = None) -> HumanLabels:
    """A labels file (or human-study project folder), refused in one line when it is not a random sample.

    `model`: the run's `model` field; a study's items drawn from other models' responses are left out.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / STUDY_MANIFEST).is_file():
            raise EFTEvalError(f"{path}: is a folder but not a human-study project (no {STUDY_MANIFEST}); give a "
                               "labels JSONL file")
        path = path / STUDY_LABELS
    if (path.parent / STUDY_MANIFEST).is_file():
        _check_random_draw(path.parent / STUDY_MANIFEST, path)
    if not path.is_file():
        raise EFTEvalError(f"{path}: no such labels file" + (
            f" (run `eft-eval human-study import {path.parent}` first)" if (path.parent / STUDY_MANIFEST).is_file()
            else ""))
    if (path.parent / STUDY_MANIFEST).is_file():
        return _study_labels(path, model)
    return _jsonl_labels(path)


def _label_value(value: Any, where: str) -> float | bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    raise EFTEvalError(f"{where}: label {short_repr(value)} is not a number, a boolean or null")


def _doc_key(doc_id: Any, where: str) -> str:
    # The same spelling rule as the analyses' prompt ids: a whole number or a text.
    if isinstance(doc_id, bool) or not isinstance(doc_id, (int, str)):
        raise EFTEvalError(f"{where}: doc_id {short_repr(doc_id)} is not a whole number or a text")
    return f"doc:{doc_id}"


class _Collector:
    """Labels of one file: one kind (numbers or booleans), each doc_id once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.labels: dict[str, float] = {}
        self.lines: dict[str, int] = {}
        self.kind: str | None = None
        self.kind_line = 0
        self.n_without_label = 0

    def add(self, key: str, value: Any, line: int, name: str) -> None:
        where = f"{self.path}:{line}"
        label = _label_value(value, where)
        if key in self.lines:
            raise EFTEvalError(f"{where}: {name} is labelled twice (also on line {self.lines[key]})")
        self.lines[key] = line
        if label is None:
            self.n_without_label += 1
            return
        kind = "boolean" if isinstance(label, bool) else "number"
        if self.kind is None:
            self.kind, self.kind_line = kind, line
        elif kind != self.kind:
            raise EFTEvalError(f"{where}: label {short_repr(value)} is a {kind} but line {self.kind_line}'s is a "
                               f"{self.kind}: one kind of label per file")
        self.labels[key] = float(label)

    def done(self) -> None:
        if not self.labels:
            raise EFTEvalError(f"{self.path}: no labels (every record's label is null or the file is empty)")
        for key in [k for k in self.lines if k not in self.labels]:
            del self.lines[key]


def _jsonl_labels(path: Path) -> HumanLabels:
    collector = _Collector(path)
    for line, record in iter_jsonl(path):
        where = f"{path}:{line}"
        if "doc_id" not in record:
            hint = " (a human-study labels file? give it inside its project folder, beside study.json)" \
                if "item_id" in record else ""
            raise EFTEvalError(f"{where}: no 'doc_id' field{hint}; expected {{\"doc_id\": ..., \"label\": ...}}")
        if "label" not in record:
            raise EFTEvalError(f"{where}: no 'label' field; expected {{\"doc_id\": ..., \"label\": ...}}")
        key = _doc_key(record["doc_id"], where)
        collector.add(key, record["label"], line, f"doc_id {record['doc_id']!r}")
    collector.done()
    return HumanLabels(path, collector.labels, collector.lines, collector.kind == "boolean", "jsonl",
                       collector.n_without_label)


def _check_random_draw(manifest_path: Path, path: Path) -> dict[str, Any]:
    """The study's manifest, refused in one line unless its items were drawn at random."""
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("items"), list):
        raise EFTEvalError(f"{manifest_path}: not a human-study manifest (no items)")
    selection = manifest.get("selection") or {}
    if manifest.get("kind") == "adjudication" or selection.get("from") == "disagreements":
        raise EFTEvalError(f"{path}: labels of an adjudication project, which holds only the judge-human "
                           "disagreements: not a random sample of the run's items, and PPI is valid only if "
                           f"{RANDOM_SAMPLE_NEEDED}; "
                           f"give the annotation project's labels ({manifest.get('parent') or 'its parent'})")
    if manifest.get("kind") != "annotation" or "samples" not in selection:
        raise EFTEvalError(f"{manifest_path}: does not record a random draw of items (kind "
                           f"{short_repr(manifest.get('kind'))}, selection {short_repr(selection)}); PPI is valid only "
                           f"if {RANDOM_SAMPLE_NEEDED}")
    return manifest


def _study_labels(path: Path, model: str | None) -> HumanLabels:
    manifest_path = path.parent / STUDY_MANIFEST
    manifest = _check_random_draw(manifest_path, path)
    items = {str(item.get("item_id")): item for item in manifest["items"] if isinstance(item, dict)}
    collector = _Collector(path)
    responses: dict[str, str] = {}
    item_ids: dict[str, str] = {}
    other_model = 0
    for line, record in iter_jsonl(path):
        where = f"{path}:{line}"
        item = items.get(str(record.get("item_id")))
        if item is None:
            raise EFTEvalError(f"{where}: item {short_repr(record.get('item_id'))} is not in {manifest_path}")
        source = item.get("source") or {}
        if source.get("doc_id") is None:
            raise EFTEvalError(f"{where}: item {item['item_id']!r} records no doc_id ({manifest_path}); it cannot "
                               "be found in a run")
        if model is not None and str(source.get("model", "")) != model:
            other_model += 1
            continue
        key = _doc_key(source["doc_id"], where)
        collector.add(key, record.get("label"), line, f"doc_id {source['doc_id']!r}")
        responses[key], item_ids[key] = str(item.get("response")), str(item["item_id"])
    if not collector.labels and other_model:
        raise EFTEvalError(f"{path}: every labelled item is a response of another model than the run's ({model!r}): "
                           "these labels are not for this run")
    collector.done()
    if collector.kind != "boolean":
        raise EFTEvalError(f"{path}: human-study labels are booleans (any factual error); found numbers")
    threshold = manifest.get("error_threshold")
    return HumanLabels(path, collector.labels, collector.lines, True, "human-study project", collector.n_without_label,
                       threshold=float(threshold) if isinstance(threshold, (int, float)) else None,
                       responses=responses, item_ids=item_ids, n_other_model=other_model)
