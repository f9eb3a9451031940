"""The study's labels put to use: the error rate of all the responses the items were drawn from,
corrected by the humans (prediction-powered inference, PPI++: `eft_eval.stats.ppi_mean_estimate`).

`prepare` draws the items uniformly at random (seeded, without replacement) from the judged
responses of the samples file, or of one model in it (`--model`, or the model `--target-error-rate`
picks: one model, not strata). So the labelled items are a random sample of exactly those responses,
which is what PPI needs: the judge's labels on all of them, corrected by the judge-human difference on
the labelled ones, estimate the share people would call erroneous, with an interval valid whatever
the judge's bias. Items without a human majority (ties, nobody answered) count as unlabelled.
The adjudication project is never used here: it holds the disagreements only.

The samples file is read again (the manifest records its path); when it is gone or no longer holds
the drawn responses, the figure is left out and the report says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eft_eval.errors import EFTEvalError
from eft_eval.stats import Estimate, ppi_mean_estimate
from eft_eval.study._combine import ItemLabel
from eft_eval.study._project import StudyProject
from eft_eval.study._selection import read_judged_samples


@dataclass(frozen=True)
class CalibratedFigures:
    """The error rate over the drawn-from responses: the judge's, the humans' alone, and PPI++'s."""

    n_population: int
    """Judged responses the items were drawn from (the same model, a judge score)."""
    n_labels: int
    judge_only: Estimate
    human_only: Estimate
    ppi: Estimate
    lam: float
    """The weight PPI++ gave the judge's labels (0: none, 1: plain PPI)."""
    effective_labels: float
    """n_labels * se(humans only)^2 / se(PPI)^2: the human labels alone that would be as precise."""


def calibrated_figures(project: StudyProject, labels: list[ItemLabel],
                       confidence_level: float) -> tuple[CalibratedFigures | None, str | None]:
    """The figures, or None and the reason they cannot be computed."""
    manifest = project.manifest
    samples = Path(str(manifest.selection.get("samples", "")))
    if not manifest.selection.get("samples") or not samples.is_file():
        return None, f"the samples file the items were drawn from ({samples}) is not there"
    try:
        judged = read_judged_samples(samples, manifest.judge)
    except (EFTEvalError, OSError) as error:  # a report is still written; this row says why it is missing
        return None, f"the samples file cannot be read ({error})"
    model = manifest.selection.get("model")
    population = {s.source_line: s for s in judged if (model is None or s.model == model)
                  and s.judge_label(manifest.error_threshold) is not None}
    items = project.items_by_id
    for item in manifest.items:
        drawn = population.get(int(item.source.get("line", -1)))
        if drawn is None or drawn.response != item.response:
            return None, (f"{samples} line {item.source.get('line')} no longer holds the response of item "
                          f"{item.item_id} (the file changed since the study was prepared)")
    labelled = [label for label in labels if label.label is not None]
    lines = {int(items[label.item_id].source["line"]) for label in labelled}
    unlabelled = [float(bool(s.judge_label(manifest.error_threshold))) for line, s in population.items()
                  if line not in lines]
    result = ppi_mean_estimate([float(bool(label.label)) for label in labelled],
                               [float(items[label.item_id].judge_label) for label in labelled],
                               unlabelled, confidence_level)
    return CalibratedFigures(len(population), len(labelled), result.judge_only, result.human_only, result.ppi,
                             result.lam, result.effective_labels), None
