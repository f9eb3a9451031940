"""`eft-eval human-study prepare|serve|import|adjudicate|report`.

Registration imports nothing heavy (no scipy, no potato): the handlers import the library lazily.
`register` takes the `StudyPage` that renders report.html: the report package, above this one,
hands it in (`eft_eval.app.commands`).
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eft_eval.parsing import count_arg, number_arg, port_arg, seed_arg
from eft_eval.stats import add_bootstrap_arguments, settings_from_args

if TYPE_CHECKING:
    from eft_eval.study._report import StudyPage


def _prepare(args: argparse.Namespace) -> int:
    from eft_eval.study._selection import SelectionConfig
    from eft_eval.study._workflow import PrepareOptions, prepare

    selection = SelectionConfig(
        n=args.n,
        seed=args.seed,
        judge=args.judge,
        error_threshold=args.error_threshold,
        model=args.model,
        target_error_rate=args.target_error_rate,
    )
    options = PrepareOptions(
        annotators_per_item=args.annotators_per_item,
        items_per_annotator=args.items_per_annotator,
        template=args.template,
        include_paths=tuple(args.include_path),
        force=args.force,
    )
    project = prepare(args.samples, args.out, selection, options)
    manifest = project.manifest
    excluded = ", ".join(f"{n} {why}" for why, n in sorted(manifest.selection["excluded"].items())) or "none"
    print(f"wrote Potato project {project.path}: {len(manifest.items)} items, {manifest.annotators_per_item} "
          "annotator(s) per item")
    if manifest.selection.get("model"):
        print(f"model: {manifest.selection['model']}")
    print(f"excluded from the draw: {excluded}")
    print(f"next: eft-eval human-study serve {project.path}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from eft_eval.study._potato import serve

    return serve(args.project, port=args.port, host=args.host)


def _import(args: argparse.Namespace) -> int:
    from eft_eval.study._workflow import import_annotations

    imported, labels = import_annotations(args.project, label_from=args.label_from,
                                          allow_partial=args.allow_partial, force=args.force)
    labelled = sum(1 for label in labels if label.label is not None)
    ties = [label.item_id for label in labels if label.tie]
    unannotated = sum(1 for label in labels if not label.answers)
    annotators = len({a.annotator for a in imported.answers})
    print(f"imported {len(imported.answers)} answers from {annotators} annotator(s) in {len(imported.files)} file(s)")
    print(f"{labelled} of {len(labels)} items labelled by majority; {len(ties)} tied; {unannotated} unannotated")
    if ties:
        print(f"tied items (no majority, excluded from agreement): {', '.join(ties)}")
    for skipped in imported.skipped:
        print(f"skipped unfinished item {skipped.item_id!r} of {skipped.annotator!r}: {skipped.reason}")
    for unfinished in imported.unfinished:
        print(f"annotator {unfinished.annotator!r} stopped after {unfinished.answered} of {unfinished.assigned} "
              "assigned items (--allow-partial): their missing votes are absent, not ties")
    print(f"wrote {args.project / 'labels.jsonl'}")
    return 0


def _adjudicate(args: argparse.Namespace) -> int:
    from eft_eval.study._workflow import adjudicate

    project = adjudicate(
        args.project,
        args.out,
        annotators_per_item=args.annotators_per_item,
        template=args.template,
        include_paths=tuple(args.include_path),
        force=args.force,
    )
    print(f"wrote adjudication project {project.path} with {len(project.manifest.items)} disagreements")
    print(f"next: eft-eval human-study serve {project.path}, then eft-eval human-study import {project.path}")
    return 0


def _report(args: argparse.Namespace, page: StudyPage) -> int:
    from eft_eval.study._workflow import report

    settings = settings_from_args(args)
    out = args.out or args.project / "report"
    results, files = report(args.project, out, adjudication_dir=args.adjudication, settings=settings, force=args.force,
                            page=page)
    print(f"agreement: {results.agreement.format()}")
    print(f"Cohen's kappa: {results.kappa.format()}")
    for row in results.jury[1:]:  # a jury's judge: its models (the jury's row is the figures above)
        print(f"jury model {row.model}: agreement {row.agreement.format()}; kappa {row.kappa.format()} "
              f"({row.n_items} items)")
    if results.gold is not None:
        gold = results.gold
        print(f"disagreements: {gold.n_disagreements}; with a gold label: {gold.n_adjudicated}; without: "
              f"{gold.n_without_gold} ({gold.n_gold_ties} tied among the experts, "
              f"{gold.n_without_gold - gold.n_gold_ties} not answered)")
        print(f"judge matches gold on disagreements: {results.gold.judge_matches_gold.format()}")
        print(f"humans match gold on disagreements: {results.gold.humans_match_gold.format()}")
    if results.calibrated is not None:
        print(f"human-corrected error rate (PPI++, {results.calibrated.n_population} responses): "
              f"{results.calibrated.ppi.format()}")
    else:
        print(f"human-corrected error rate: n/a ({results.calibrated_unavailable})")
    print("wrote " + ", ".join(str(f) for f in (files.markdown, files.html, files.json, files.picture) if f))
    return 0


def _add_template_flags(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--template", default=default,
                        help=f"template folder name under human_study/ (default: {default})")
    parser.add_argument("--include-path", action="append", default=[], metavar="DIR",
                        help="extra folder of templates (repeatable)")


def _force_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--force", action="store_true", help=f"replace an existing {what}")


def register(subparsers: Any, page: StudyPage) -> None:
    parser = subparsers.add_parser("human-study", help="check judge labels against people with Potato")
    steps = parser.add_subparsers(dest="study_command", metavar="STEP", required=True)

    p = steps.add_parser("prepare", help="select judged items and write a Potato project")
    p.add_argument("--samples", type=Path, required=True, help="samples.jsonl written by `eft-eval run`/`judge`")
    p.add_argument("--n", type=count_arg(), required=True, help="number of items")
    p.add_argument("--out", type=Path, required=True, help="project folder to write")
    p.add_argument("--seed", type=seed_arg(), default=0, help="seed of the random draw (default 0)")
    p.add_argument("--judge", default="factuality",
                   help="judge whose labels are checked (default factuality); JUDGE@MODEL: one model of its jury")
    p.add_argument("--error-threshold", type=number_arg(), default=1.0,
                   help="judge score counted as 'any factual error' (default >= 1)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="draw only from this model's responses")
    which.add_argument("--target-error-rate", type=number_arg(minimum=0, maximum=1),
                       help="draw from the model whose judged error rate is nearest this")
    p.add_argument("--annotators-per-item", type=count_arg(), default=1, help="annotators per item (default 1)")
    p.add_argument("--items-per-annotator", type=count_arg(), help="per-annotator quota (default: every item)")
    _add_template_flags(p, "factuality")
    _force_flag(p, "project folder")
    p.set_defaults(handler=_prepare)

    p = steps.add_parser("serve", help="start Potato for a project (loopback by default)")
    p.add_argument("project", type=Path)
    p.add_argument("--port", "-p", type=port_arg(), default=8000)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.set_defaults(handler=_serve)

    p = steps.add_parser("import", help="read Potato's annotations, combine annotators, write labels.jsonl")
    p.add_argument("project", type=Path)
    p.add_argument("--label-from", choices=("count", "yes_no"), default="count",
                   help="question a human label is reduced from (default count)")
    p.add_argument("--allow-partial", action="store_true",
                   help="import complete items of annotators who have not finished")
    _force_flag(p, "labels.jsonl")
    p.set_defaults(handler=_import)

    p = steps.add_parser("adjudicate", help="write a Potato project with the judge-human disagreements for gold labels")
    p.add_argument("project", type=Path, help="annotation project, already imported")
    p.add_argument("--out", type=Path, required=True, help="adjudication project folder to write")
    p.add_argument("--annotators-per-item", type=count_arg(), default=1, help="experts per item (default 1)")
    _add_template_flags(p, "factuality_adjudication")
    _force_flag(p, "project folder")
    p.set_defaults(handler=_adjudicate)

    p = steps.add_parser("report", help="agreement, kappa, confusion matrix and gold shares with bootstrap SEs, "
                         "and the error rate corrected by the labels (PPI)")
    p.add_argument("project", type=Path, help="annotation project, already imported")
    p.add_argument("--adjudication", type=Path, help="imported adjudication project (gold labels)")
    p.add_argument("--out", type=Path, help="report folder (default PROJECT/report)")
    add_bootstrap_arguments(p)
    _force_flag(p, "report")
    p.set_defaults(handler=partial(_report, page=page))
