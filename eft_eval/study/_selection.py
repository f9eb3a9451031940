"""Pick the items of a human study from judged samples (`samples.jsonl`, docs/formats.md).

The judge's label is reduced to "any factual error" (score >= threshold, 1 by default). Items the
judge abstained on or failed have no label to compare with, so they are excluded from the
selection and counted in the project manifest.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import parse_number
from eft_eval.runfolder import JURY_MEMBER, StoredRun, judge_aliases, read_run, split_jury_member


@dataclass(frozen=True)
class JudgedSample:
    """One response with the judge's verdict on it."""

    source_line: int
    doc_id: int | str | None
    task: str
    model: str
    query: str
    response: str
    judge_status: str
    judge_score: float | None
    jury_scores: dict[str, float | None] = field(default_factory=dict)
    """A jury's judge: each model's own score (None: that model abstained or failed); {} otherwise."""

    def judge_label(self, threshold: float) -> bool | None:
        """True = the judge found at least one factual error; None = no usable score."""
        if self.judge_status != "scored" or self.judge_score is None:
            return None
        return self.judge_score >= threshold


@dataclass(frozen=True)
class SelectionConfig:
    """How items are drawn from the judged samples."""

    n: int
    """Number of items to annotate."""
    seed: int = 0
    """Seed of the random draw (the same seed and file give the same items)."""
    judge: str = "factuality"
    """Name of the judge whose labels are checked (key under `judgments`)."""
    error_threshold: float = 1.0
    """A judge score at or above this counts as "any factual error"."""
    model: str | None = None
    """Only draw from this model's responses."""
    target_error_rate: float | None = None
    """Draw from the model whose judged error rate is nearest this (ties: first model name)."""

    def __post_init__(self) -> None:
        # Checked before anything is read or written: `nan` as a threshold labels nothing, and
        # once crashed writing study.json after half the project was on disk.
        where = "human-study selection"
        parse_number(self.n, "n", where, integer=True, minimum=1)
        parse_number(self.seed, "seed", where, integer=True)
        parse_number(self.error_threshold, "error_threshold", where)
        if self.target_error_rate is not None:
            parse_number(self.target_error_rate, "target_error_rate", where, minimum=0, maximum=1)
        if not isinstance(self.judge, str) or not self.judge.strip():
            raise EFTEvalError(f"{where}: judge must be a judge name, got {self.judge!r}")


@dataclass(frozen=True)
class Selection:
    """The drawn items and what was left out, for the manifest."""

    items: list[JudgedSample]
    model: str | None
    excluded: dict[str, int] = field(default_factory=dict)
    """Count of excluded samples by reason (judge status, or another model)."""
    model_error_rates: dict[str, float] = field(default_factory=dict)


def read_judged_samples(path: Path, judge: str) -> list[JudgedSample]:
    """Every sample of a samples file or run folder, with `judge`'s status and score (none: "missing").

    `judge@model` is one model of a jury (`--judge-model a,b,c`); a jury's judge also gives each
    model's own score, for the report's per-model rows."""
    stored = read_run(path).check_samples(judged=False)
    name = _judge_name(stored, judge)
    # One model of a jury has no `models` of its own, so this is {} for it as for a single-model judge.
    own = {model: stored.judgments(f"{name}{JURY_MEMBER}{model}") for model in stored.jury_models(name)}
    samples = []
    for index, (line, row, judgment) in enumerate(zip(stored.lines, stored.rows, stored.judgments(name))):
        verdict = judgment or {"status": "missing"}
        for key in ("query", "response"):
            if not isinstance(row.get(key), str):
                raise EFTEvalError(f"{stored.samples_path}:{line}: field {key!r} must be a string")
        score = float(verdict["score"]) if verdict["status"] == "scored" else None
        jury = {model: _scored(judgments[index]) for model, judgments in own.items()}
        samples.append(JudgedSample(line, row.get("doc_id"), str(row.get("task", "")), str(row.get("model", "")),
                                    row["query"], row["response"], verdict["status"], score, jury))
    return samples


def _judge_name(stored: StoredRun, judge: str) -> str:
    """`judge` as the run names it: a former name is found under the current one; `judge@model` is
    resolved as the analyses resolve it (an unknown model is refused in one line)."""
    if split_jury_member(judge)[1] is not None and judge not in stored.judge_names():
        return stored.resolve_judge(judge)
    return next((n for n in (judge, *judge_aliases(judge)) if n in stored.judge_names()), judge)


def _scored(judgment: dict[str, object] | None) -> float | None:
    if not judgment or judgment.get("status") != "scored":
        return None
    return float(judgment["score"])  # type: ignore[arg-type]  # checked by `check_samples`


def judged_error_rates(samples: list[JudgedSample], threshold: float) -> dict[str, float]:
    """Per model: share of scored responses the judge found a factual error in."""
    labels: dict[str, list[bool]] = {}
    for sample in samples:
        label = sample.judge_label(threshold)
        if label is not None:
            labels.setdefault(sample.model, []).append(label)
    return {model: sum(v) / len(v) for model, v in sorted(labels.items())}


def select_items(samples: list[JudgedSample], config: SelectionConfig, source: Path) -> Selection:
    """Draw `config.n` scored items at random with `config.seed`."""
    if config.n < 1:
        raise EFTEvalError(f"--n must be at least 1, got {config.n}")
    if not samples:
        raise EFTEvalError(f"{source}: no samples in the file; nothing to annotate")
    rates = judged_error_rates(samples, config.error_threshold)
    model = config.model
    if config.target_error_rate is not None:
        if model is not None:
            raise EFTEvalError("give either --model or --target-error-rate, not both")
        if not rates:
            raise EFTEvalError(f"{source}: no response has a {config.judge!r} score; cannot pick a model by error rate")
        model = min(rates, key=lambda m: (abs(rates[m] - config.target_error_rate), m))  # type: ignore[operator]
    excluded: Counter[str] = Counter()
    eligible = []
    for sample in samples:
        if model is not None and sample.model != model:
            excluded["other model"] += 1
        elif sample.judge_label(config.error_threshold) is None:
            excluded[f"judge {sample.judge_status}"] += 1
        else:
            eligible.append(sample)
    if model is not None and not any(s.model == model for s in samples):
        raise EFTEvalError(f"{source}: no responses from model {model!r} (models: "
                           f"{', '.join(sorted({s.model for s in samples}))})")
    if len(eligible) < config.n:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(excluded.items())) or "none"
        raise EFTEvalError(
            f"{source}: only {len(eligible)} responses have a {config.judge!r} score"
            f"{' for model ' + repr(model) if model else ''}, fewer than --n {config.n} (excluded: {reasons})"
        )
    # Sorting by file position first makes the draw depend on the seed alone, not on dict order.
    eligible.sort(key=lambda s: s.source_line)
    drawn = random.Random(config.seed).sample(eligible, config.n)
    return Selection(items=drawn, model=model, excluded=dict(excluded), model_error_rates=rates)
