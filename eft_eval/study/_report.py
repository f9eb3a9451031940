"""Write a human study's report: Markdown, JSON, a confusion-matrix picture and the HTML page.

The study publishes its figures (`summary_rows`, `annotator_rows`, `method_note`, `confusion_svg`);
the HTML page is rendered by the report package, the project's one HTML renderer, which sits above
this package and is handed in as a `StudyPage`. The picture is a small hand-written SVG, so the
report needs no plotting library and is byte-for-byte reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from eft_eval.fileio import refuse_overwrite, write_json, write_text_atomic
from eft_eval.locking import lock_folder
from eft_eval.runfolder import JURY_MEMBER
from eft_eval.stats import ConfusionMatrix, format_number
from eft_eval.study._results import JURY, GoldFigures, StudyResults

MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"
JSON_FILE = "report.json"
PICTURE_FILE = "confusion_matrix.svg"


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path | None
    """None when no `StudyPage` rendered one."""
    json: Path
    picture: Path


class StudyPage(Protocol):
    """Renders a study's HTML page from its figures, its project and its adjudication project."""

    def __call__(self, results: StudyResults, title: str, project: Path, adjudication: Path | None) -> str: ...


def summary_rows(results: StudyResults) -> list[tuple[str, str]]:
    """(figure, value) rows of the summary table, shared by Markdown and the HTML page."""
    rows = [
        ("Items in the study", str(results.n_items)),
        ("Items with a human majority label", str(results.n_labelled)),
        ("Items with tied human votes (excluded)", str(results.n_ties)),
        ("Items nobody annotated (excluded)", str(results.n_unannotated)),
        ("Annotators", str(results.n_annotators)),
        ("Judge-human agreement rate", results.agreement.format()),
        ("Cohen's kappa", results.kappa.format()),
        ("Judge: share with any factual error", results.judge_error_rate.format()),
        ("Humans: share with any factual error", results.human_error_rate.format()),
        ("Answers whose count and yes/no questions agree", format_number(results.answer_consistency)),
    ]
    if results.gold is not None:
        gold = results.gold
        rows += [
            ("Judge-human disagreements", str(gold.n_disagreements)),
            ("Disagreements with a gold label", str(gold.n_adjudicated)),
            ("Disagreements without a gold label (excluded)", str(gold.n_without_gold)),
            ("of which the experts tied on", str(gold.n_gold_ties)),
            ("Share of disagreements where the judge matches gold", gold.judge_matches_gold.format()),
            ("Share of disagreements where the humans match gold", gold.humans_match_gold.format()),
        ]
    return rows + calibrated_rows(results)


PPI_ROW = "Human-corrected share with any factual error (PPI++, central-limit interval, all drawn-from responses)"


def calibrated_rows(results: StudyResults) -> list[tuple[str, str]]:
    """The prediction-powered rows: the judge's error rate over every response the items were drawn
    from, corrected by the human labels (valid because the items are a random sample of them)."""
    figures = results.calibrated
    if figures is None:
        return [(PPI_ROW, f"n/a: {results.calibrated_unavailable}")]
    return [
        ("Judged responses the items were drawn from", str(figures.n_population)),
        ("Judge: share with any factual error, all drawn-from responses", figures.judge_only.format()),
        (PPI_ROW, figures.ppi.format()),
        ("Human labels the judge was worth (effective labels: n x var(humans only) / var(PPI))",
         f"{format_number(figures.effective_labels, 1)} (from {figures.n_labels} labels; judge weight "
         f"{format_number(figures.lam, 2)})"),
    ]


def annotator_rows(results: StudyResults) -> list[list[str]]:
    return [
        [
            a.annotator,
            str(a.n_items),
            a.agreement_with_judge.format(),
            a.kappa_with_judge.format(),
            a.agreement_with_others.format(),
            a.gold_accuracy.format() if a.gold_accuracy else "n/a",
        ]
        for a in results.annotators
    ]


JURY_HEADER = ["Judge", "Items", "Agreement with humans", "Cohen's kappa with humans",
               "Share with any factual error", "Agreement with the jury"]


def jury_rows(results: StudyResults) -> list[list[str]]:
    """A jury's judge: the jury's row (the figures of the summary table) and each model's, on the
    labelled items it scored; [] for a judge of one model."""
    return [
        [
            f"{results.judge} (jury)" if row.model == JURY else f"{results.judge}{JURY_MEMBER}{row.model}",
            str(row.n_items),
            row.agreement.format(),
            row.kappa.format(),
            row.error_rate.format(),
            row.agreement_with_jury.format(),
        ]
        for row in results.jury
    ]


ANNOTATOR_HEADER = ["Annotator", "Items", "Agreement with judge", "Kappa with judge",
                    "Agreement with other annotators", "Matches gold"]


def method_note(results: StudyResults) -> str:
    b = results.bootstrap
    return (
        f"Labels are reduced to \"any factual error\" (judge {results.judge!r}: score >= "
        f"{results.error_threshold:g}; humans: "
        f"{'number-of-errors answer >= 1' if results.label_from == 'count' else 'yes/no answer'}), "
        f"several annotators combined by majority vote. ± is one bootstrap standard error; intervals are "
        f"{b.confidence_level:.0%} percentile intervals from scipy.stats.bootstrap resampling items "
        f"({b.n_resamples} resamples, seed {b.seed})."
    )


def render_markdown(results: StudyResults, title: str) -> str:
    lines = [f"# {title}", "", method_note(results), "", "| Figure | Value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in summary_rows(results)]
    m = results.confusion
    lines += [
        "",
        "## Confusion matrix (rows: judge, columns: humans)",
        "",
        "| | Humans: error | Humans: no error |",
        "|---|---|---|",
        f"| **Judge: error** | {m.both_error} | {m.row_error_col_no_error} |",
        f"| **Judge: no error** | {m.row_no_error_col_error} | {m.both_no_error} |",
        "",
        f"![Confusion matrix]({PICTURE_FILE})",
    ]
    if results.jury:
        lines += ["", "## Each jury model against the humans", "", "| " + " | ".join(JURY_HEADER) + " |",
                  "|" + "---|" * len(JURY_HEADER)]
        lines += ["| " + " | ".join(row) + " |" for row in jury_rows(results)]
    if results.annotators:
        lines += ["", "## Per annotator", "", "| " + " | ".join(ANNOTATOR_HEADER) + " |",
                  "|" + "---|" * len(ANNOTATOR_HEADER)]
        lines += ["| " + " | ".join(row) + " |" for row in annotator_rows(results)]
    if results.tied_item_ids:
        lines += ["", "## Items with tied human votes", "", ", ".join(results.tied_item_ids)]
    if results.gold is not None and results.gold.tied_item_ids:
        lines += ["", "## Disagreements the experts tied on", "", ", ".join(results.gold.tied_item_ids)]
    if results.gold is not None and _unanswered(results.gold):
        lines += ["", "## Disagreements no expert answered", "", ", ".join(_unanswered(results.gold))]
    return "\n".join(lines) + "\n"


def _unanswered(gold: GoldFigures) -> list[str]:
    """Disagreements without a gold label that the experts did not tie on: nobody answered them."""
    return [item_id for item_id in gold.without_gold_item_ids if item_id not in gold.tied_item_ids]


def confusion_svg(m: ConfusionMatrix) -> str:
    """A 2x2 heat map with counts; darker = more items."""
    cell, left, top = 120, 150, 70
    peak = max(1, *(v for row in m.as_rows() for v in row))
    names = ["error", "no error"]
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + 2 * cell + 20}" height="{top + 2 * cell + 20}" '
            'font-family="sans-serif" font-size="14" role="img" aria-label="Confusion matrix, judge versus humans">'
        ),
        f'<text x="{left + cell}" y="20" text-anchor="middle" font-weight="bold">Humans</text>',
        f'<text x="20" y="{top + cell}" text-anchor="middle" font-weight="bold" transform="rotate(-90 20 '
        f'{top + cell})">Judge</text>',
    ]
    for j, name in enumerate(names):
        parts.append(f'<text x="{left + j * cell + cell // 2}" y="{top - 12}" text-anchor="middle">{name}</text>')
        parts.append(f'<text x="{left - 10}" y="{top + j * cell + cell // 2 + 5}" text-anchor="end">{name}</text>')
    for i, row in enumerate(m.as_rows()):
        for j, count in enumerate(row):
            shade = 1 - 0.75 * count / peak
            fill = f"rgb({int(255 * shade)},{int(255 * (0.35 + 0.65 * shade))},255)"
            x, y = left + j * cell, top + i * cell
            text_fill = "white" if shade < 0.55 else "black"
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#333"/>')
            parts.append(f'<text x="{x + cell // 2}" y="{y + cell // 2 + 8}" text-anchor="middle" font-size="24" '
                         f'fill="{text_fill}">{count}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_report(results: StudyResults, out: Path, *, title: str = "Human study: judge versus humans",
                 extra: Mapping[str, object] | None = None, force: bool = False,
                 page: StudyPage | None = None) -> ReportFiles:
    """Write the report files under `out` (the HTML page when `page` is given and `extra` names the
    "project" and "adjudication" folders); existing ones are replaced only with `force`."""
    extra = extra or {}
    project, adjudication = extra.get("project"), extra.get("adjudication")
    html = out / HTML_FILE if page is not None and project else None
    files = ReportFiles(out / MARKDOWN_FILE, html, out / JSON_FILE, out / PICTURE_FILE)
    # Check every file before writing any, so a refusal leaves no half-replaced report behind.
    for path in (files.markdown, files.html, files.json, files.picture):
        if path is not None and path.exists() and not force:
            refuse_overwrite(path, force, "a report file")
    with lock_folder(out, "human-study report"):  # one writer per report folder
        write_text_atomic(files.picture, confusion_svg(results.confusion))
        write_text_atomic(files.markdown, render_markdown(results, title))
        if page is not None and files.html is not None:
            adjudication_dir = Path(str(adjudication)) if adjudication else None
            write_text_atomic(files.html, page(results, title, Path(str(project)), adjudication_dir))
        write_json(files.json, {"title": title, **extra, **results.to_dict()})
    return files


__all__ = [
    "ANNOTATOR_HEADER",
    "JURY_HEADER",
    "ReportFiles",
    "StudyPage",
    "annotator_rows",
    "calibrated_rows",
    "confusion_svg",
    "jury_rows",
    "method_note",
    "render_markdown",
    "summary_rows",
    "write_report",
]
