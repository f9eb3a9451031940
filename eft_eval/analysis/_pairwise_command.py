"""`eft-eval pairwise RUN... --against REF --judges preference --output DIR`: win rates against a reference.

Registration imports nothing heavy; the handler imports the judging engine and the statistics lazily.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from eft_eval.judging.commands import add_judge_arguments, config_from_args, quiet_http_logs
from eft_eval.parsing import name_list_arg
from eft_eval.stats import add_bootstrap_arguments, settings_from_args

_RUN_HELP = "a run folder (eft-eval run) or a samples.jsonl of responses"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pairwise",
        help="judge runs against a reference run, pair by pair in both orders: win rates, position inconsistency",
        description="Pair each RUN's responses with the reference's by prompt id (doc_id), ask pairwise judges "
        "(kind: pairwise, e.g. the built-in preference) about every pair in both orders, and write DIR/pairs.jsonl "
        "(both verdicts with their reasoning) and DIR/results.json (win rate, length-controlled win rate, position "
        "inconsistency per judge and run; Bradley-Terry scores for several runs). With --round-robin, every two "
        "runs are also judged against each other (DIR/run_pairs.jsonl) and Bradley-Terry fits all comparisons. "
        "Re-running resumes from the judge cache in DIR.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help=_RUN_HELP)
    parser.add_argument("--against", required=True, metavar="REF", help=f"the reference: {_RUN_HELP}")
    parser.add_argument("--judges", type=name_list_arg, default=None,
                        help="comma-separated pairwise judge names (default: every pairwise judge)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder for pairwise.json, pairs.jsonl and results.json")
    parser.add_argument("--round-robin", action="store_true",
                        help="also judge every two runs against each other, both orders (runs*(runs-1)/2 more "
                        "comparisons): per-pair win rates, and Bradley-Terry fitted on all comparisons")
    add_judge_arguments(parser)
    bootstrap = parser.add_argument_group("intervals")
    add_bootstrap_arguments(bootstrap)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from eft_eval.analysis._pairwise import pairwise
    from eft_eval.runfolder import BATCH_STATE_FILE

    quiet_http_logs(args)
    config = config_from_args(args)
    if args.cancel:  # --judge-mode batch --cancel: nothing is judged
        from eft_eval.judging import cancel_batches

        if config.batch.state is None:
            config = config.with_batch_state(Path(args.output) / BATCH_STATE_FILE)
        cancelled = cancel_batches(config)
        print(f"cancelled {len(cancelled)} batch(es){': ' + ', '.join(cancelled) if cancelled else ''}")
        return 0
    names = [name.strip() for name in args.judges.split(",") if name.strip()] if args.judges else None
    results = pairwise(args.runs, args.against, args.output, names, config, include_paths=args.include_path,
                       bootstrap=settings_from_args(args), round_robin=args.round_robin)
    print(format_pairwise_table(results))
    for run, prompts in results["prompts"].items():  # never dropped in silence
        if prompts["run_only"] or prompts["reference_only"]:
            print(f"{run}: {prompts['run_only']} prompt(s) not in the reference, {prompts['reference_only']} reference "
                  "prompt(s) not in the run: not compared (their doc_ids: results.json `prompts`)")
    for two in (results.get("round_robin") or {}).get("pairs", []):  # --round-robin: runs with different prompts
        if two["run_only"] or two["opponent_only"]:
            print(f"{two['run']} vs {two['opponent']}: {two['matched']} shared prompt(s) compared, {two['run_only']} "
                  f"only in {two['run']}, {two['opponent_only']} only in {two['opponent']}")
    print(f"wrote {Path(args.output) / 'pairs.jsonl'} and {Path(args.output) / 'results.json'}")
    return 0


def format_pairwise_table(results: dict[str, Any]) -> str:
    """One row per judge and run: win rate, length-controlled win rate, length difference, inconsistency."""
    from eft_eval.stats import format_mean_se, format_table

    def shown(estimate: dict[str, Any]) -> str:
        value = estimate.get("value")
        return "n/a" if value is None else format_mean_se(value, estimate.get("standard_error"))

    rows = []
    for judge, entry in results["judges"].items():
        for run, numbers in entry["runs"].items():
            prompts = results["prompts"][run]
            unmatched = prompts["run_only"] + prompts["reference_only"]
            length = numbers["length_difference"]["mean_tokens"]
            rows.append([judge, run, shown(numbers["win_rate"]), shown(numbers["length_controlled_win_rate"]),
                         "n/a" if length is None else f"{length:+.1f}", shown(numbers["position_inconsistency"]),
                         f"{numbers['n_compared']}/{numbers['n_pairs']}", str(unmatched)])
    header = ["judge", f"run (vs {results['reference']})", "win rate", "LC win rate", "length diff",
              "inconsistent", "compared", "unmatched"]
    table = format_table(header, rows)
    between = [[judge, f"{numbers['run']} vs {numbers['opponent']}", shown(numbers["win_rate"]),
                shown(numbers["position_inconsistency"]), f"{numbers['n_compared']}/{numbers['n_pairs']}"]
               for judge, entry in results["judges"].items() for numbers in entry.get("between_runs") or []]
    if between:  # a round robin: the runs against each other
        table += "\n\n" + format_table(["judge", "run vs run", "win rate (first)", "inconsistent", "compared"], between)
    return table
