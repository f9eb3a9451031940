"""`eft-eval pairwise` as a library call: runs judged against one reference, pair by pair, in both orders.

    pairwise(["runs/up", "runs/small-ft"], against="runs/large-ft", output_dir="pairs/",
             judges=["preference"], config=JudgeConfig(...))

1. Read each run and the reference (`runfolder.read_run`); pair their responses by prompt id
   (`doc_id`), checking that a shared id holds the same prompt. Prompts only one side has are
   counted per run (`results.json` `prompts`), never silently dropped.
2. Ask every pair twice, run in position A then in position B, with every pairwise judge, through
   the judging engine (`judging.judge_items`): cache, retries, concurrency, Batch API, budget and
   judge samples work as for scores. The cache lives in the output folder, so a killed command,
   re-run, asks no pair twice.
3. Turn each verdict round to the run's view (`1 - outcome` when the run was response B), combine
   the two orders by the judge's `order_rule` (`stats.combine_orders`), and write `pairs.jsonl`
   (both verdicts, with their reasoning) and `results.json` (`_pairwise_numbers.summarize`).
4. With `round_robin`, also ask every two runs about each other (both orders, prompts they share):
   `run_pairs.jsonl`, per-pair win rates in `results.json`, and Bradley-Terry fitted on every
   comparison, so the runs' ranking rests on more than how each fared against the reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError, short_repr
from eft_eval.fileio import LOCK_FILE, read_json_object, write_json, write_jsonl
from eft_eval.judging import (
    JudgeConfig,
    JudgeItem,
    JudgeSpec,
    count_uncached,
    describe_config,
    judge_items_sync,
    load_judges,
    new_ledger,
    preflight,
)
from eft_eval.runfolder import (
    JUDGE_CACHE_FILE,
    PAIRS_FILE,
    PAIRWISE_FILE,
    RESULTS_FILE,
    RUN_PAIRS_FILE,
    RunFolder,
    StoredRun,
    now,
    read_run,
)
from eft_eval.stats import BootstrapSettings, response_tokens


@dataclass(frozen=True)
class Pair:
    """One prompt answered by a run and by the reference."""

    run: str
    doc_id: Any
    query: str
    response: str
    reference_response: str
    response_tokens: int | None
    reference_tokens: int | None
    opponent: str | None = None
    """Round robin: the other run's label (`reference_response` is then its response); None against
    the reference."""

    @property
    def length_difference(self) -> int | None:
        """The run's response length minus the reference's, in tokens; None when either is unknown."""
        if self.response_tokens is None or self.reference_tokens is None:
            return None
        return self.response_tokens - self.reference_tokens


def pairwise(
    runs: Sequence[str | Path],
    against: str | Path,
    output_dir: str | Path,
    judges: Sequence[str] | None = None,
    config: JudgeConfig | None = None,
    include_paths: Sequence[str] | None = None,
    bootstrap: BootstrapSettings | None = None,
    round_robin: bool = False,
    budget_spent: float = 0.0,
) -> dict[str, Any]:
    """Judge every run's responses against `against`'s, prompt by prompt, in both orders; write
    `output_dir`/pairwise.json, pairs.jsonl and results.json and return the results.

    `judges`: pairwise judge names (default: every pairwise judge, e.g. the built-in `preference`).
    `config`: how to judge (`JudgeConfig`); its cache is put in `output_dir` (what a re-run
    replays) unless it has none (`--no-cache`) or the backend is local.
    `round_robin`: also judge every two runs against each other (`run_pairs.jsonl`; Bradley-Terry
    then fits all comparisons). `budget_spent`: USD already spent against `config.cost.budget` by
    the caller (a sweep's runs), so that the whole stays within it.
    """
    from eft_eval.analysis._pairwise_numbers import summarize

    config = config or JudgeConfig()
    bootstrap = bootstrap or BootstrapSettings()
    specs = load_judges(list(judges) if judges else None, list(include_paths or []), kind="pairwise")
    if not specs:
        raise EFTEvalError("no pairwise judge to ask (give --judges NAME of a judge with kind: pairwise)")
    reference = _read(against, "--against")
    stored = [_read(path, "RUN") for path in runs]
    _check_labels(stored, reference)
    pairs, prompts = match_prompts(stored, reference)
    if not pairs:
        raise EFTEvalError(f"no prompt is shared by the runs and the reference {reference.path} (pairs are matched "
                           "by doc_id): were they run on the same task?")

    output = Path(output_dir)
    _check_output(output)
    folder = RunFolder(output)
    if config.cache_path is not None and config.backend != "local":  # the local judge keeps its model by its cache
        config = dataclasses.replace(config, cache_path=output / JUDGE_CACHE_FILE)
    if config.mode == "batch" and config.batch.state is None:  # a re-run re-attaches to its batches
        config = config.with_batch_state(folder.batch_state)
    between, between_prompts = match_runs(stored) if round_robin else ([], [])
    items = [item for pair in [*pairs, *between] for item in _both_orders(pair)]
    if count_uncached(items, specs, config):  # a fully cached re-run needs no server
        preflight(config, specs)

    with folder.lock("eft-eval pairwise"):
        _check_output(output)
        record = _record(stored, reference, specs, output, round_robin)
        write_json(output / PAIRWISE_FILE, record)
        ledger = new_ledger(config, budget_spent if config.cost.budget is not None else 0.0)
        judged = judge_items_sync(items, specs, config, ledger=ledger)
        rows = [_pair_row(pair, pair.opponent or reference.label, judged[2 * k], judged[2 * k + 1], specs)
                for k, pair in enumerate([*pairs, *between])]
        rows, between_rows = rows[:len(pairs)], rows[len(pairs):]
        write_jsonl(output / PAIRS_FILE, rows)  # what was paid for is on disk before the statistics
        if round_robin:
            write_jsonl(output / RUN_PAIRS_FILE, between_rows)
        results = {
            "kind": "pairwise",
            "reference": reference.label,
            "runs": [run.label for run in stored],
            "prompts": prompts,
            "round_robin": {"pairs": between_prompts} if round_robin else None,
            "judges": summarize(rows, [run.label for run in stored], reference.label, specs, bootstrap,
                                between_rows if round_robin else None),
            "config": describe_config(config, specs),
            "cost": ledger.summary(),
            "bootstrap": {"n_resamples": bootstrap.n_resamples, "seed": bootstrap.seed,
                          "confidence_level": bootstrap.confidence_level},
        }
        write_json(output / RESULTS_FILE, results)
    return results


def _read(path: str | Path, flag: str) -> StoredRun:
    stored = read_run(path)
    for number, row in zip(stored.lines, stored.rows):
        where = f"{stored.samples_path}:{number}"
        for key in ("query", "response"):
            if not isinstance(row.get(key), str):
                raise EFTEvalError(f"{where}: field {key!r} is {short_repr(row.get(key))}, not text ({flag} must be "
                                   "a run folder or samples file of responses)")
        if "doc_id" not in row:
            raise EFTEvalError(f"{where}: no 'doc_id': pairs are matched by prompt id")
    return stored


def _check_labels(stored: Sequence[StoredRun], reference: StoredRun) -> None:
    """Runs are named by their folders: two of one name (or the reference's) could not be told apart."""
    seen: dict[str, Path] = {reference.label: reference.path}
    for run in stored:
        if run.label in seen:
            raise EFTEvalError(f"two runs are both called {run.label!r} ({seen[run.label]} and {run.path}): runs are "
                               "named by their folder, so give folders of distinct names")
        seen[run.label] = run.path


def match_prompts(stored: Sequence[StoredRun], reference: StoredRun) -> tuple[list[Pair], dict[str, Any]]:
    """Each run's pairs with the reference by `doc_id`, and per run the prompts that found no partner.

    A doc_id twice in one file is an error naming the line, and so is a shared doc_id whose prompt
    text differs (runs of different tasks): both would pair responses to different questions.
    """
    ref_rows = _by_doc_id(reference)
    pairs: list[Pair] = []
    prompts: dict[str, Any] = {}
    for run in stored:
        rows = _by_doc_id(run)
        matched = _pair_rows(run, rows, reference, ref_rows, pairs, opponent=None)
        run_only = [doc_id for doc_id in rows if doc_id not in ref_rows]
        reference_only = [doc_id for doc_id in ref_rows if doc_id not in rows]
        prompts[run.label] = {"matched": matched, "run_only": len(run_only),
                              "reference_only": len(reference_only),
                              "run_only_ids": run_only, "reference_only_ids": reference_only}
    return pairs, prompts


def match_runs(stored: Sequence[StoredRun]) -> tuple[list[Pair], list[dict[str, Any]]]:
    """Every two runs' pairs by `doc_id` (the earlier-named run as `run`, the other as `opponent`),
    and per two runs how many prompts were shared and how many only one of them answered."""
    pairs: list[Pair] = []
    counts: list[dict[str, Any]] = []
    by_id = [_by_doc_id(run) for run in stored]
    for first in range(len(stored)):
        for second in range(first + 1, len(stored)):
            run, other = stored[first], stored[second]
            rows, others = by_id[first], by_id[second]
            matched = _pair_rows(run, rows, other, others, pairs, opponent=other.label)
            counts.append({"run": run.label, "opponent": other.label, "matched": matched,
                           "run_only": sum(1 for doc_id in rows if doc_id not in others),
                           "opponent_only": sum(1 for doc_id in others if doc_id not in rows)})
    return pairs, counts


def _pair_rows(run: StoredRun, rows: dict[Any, tuple[int, dict[str, Any]]], other: StoredRun,
               others: dict[Any, tuple[int, dict[str, Any]]], pairs: list[Pair], opponent: str | None) -> int:
    """Append a `Pair` for each doc_id both runs answered (`other` as the reference, or as the run
    `opponent`); returns how many. A shared doc_id with another prompt text is an error: the two runs
    would pair responses to different questions."""
    matched = [doc_id for doc_id in rows if doc_id in others]
    for doc_id in matched:
        (line, row), (_, theirs) = rows[doc_id], others[doc_id]
        if row["query"] != theirs["query"]:
            raise EFTEvalError(
                f"{run.samples_path}:{line}: doc_id {short_repr(doc_id)} holds another prompt than in "
                f"{other.samples_path} ({short_repr(row['query'])} vs {short_repr(theirs['query'])}): "
                f"were {'the runs' if opponent else 'the run and the reference'} run on the same task?")
        pairs.append(Pair(run.label, doc_id, row["query"], row["response"], theirs["response"],
                          response_tokens(row), response_tokens(theirs), opponent=opponent))
    return len(matched)


def _by_doc_id(run: StoredRun) -> dict[Any, tuple[int, dict[str, Any]]]:
    rows: dict[Any, tuple[int, dict[str, Any]]] = {}
    for line, row in zip(run.lines, run.rows):
        key = row["doc_id"]
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise EFTEvalError(f"{run.samples_path}:{line}: doc_id {short_repr(key)} is not a number or text")
        if key in rows:
            raise EFTEvalError(f"{run.samples_path}:{line}: doc_id {short_repr(key)} again (first on line "
                               f"{rows[key][0]}): a prompt must be answered once per run to be paired")
        rows[key] = (line, row)
    return rows


def _both_orders(pair: Pair) -> tuple[JudgeItem, JudgeItem]:
    """The run's response as A, then as B."""
    return (JudgeItem(pair.query, pair.response, pair.reference_response),
            JudgeItem(pair.query, pair.reference_response, pair.response))


def _pair_row(pair: Pair, reference: str, first: dict[str, Any], swapped: dict[str, Any],
              specs: Sequence[JudgeSpec]) -> dict[str, Any]:
    """One line of pairs.jsonl: the pair, and per judge both verdicts and their combined outcome."""
    from eft_eval.stats import combine_orders

    judgments: dict[str, Any] = {}
    for spec in specs:
        one, two = first[spec.name], swapped[spec.name]
        # Outcomes from the run's view: as A its score is its outcome, as B the reverse.
        run_first = float(one["score"]) if one["status"] == "scored" else None
        run_swapped = 1.0 - float(two["score"]) if two["status"] == "scored" else None
        outcome = consistent = None
        if run_first is not None and run_swapped is not None:
            outcome = combine_orders(run_first, run_swapped, spec.order_rule)
            consistent = _same_verdict(run_first, run_swapped, by_side=spec.order_rule == "side")
        judgments[spec.name] = {
            "outcome": outcome,
            "first": run_first,
            "swapped": run_swapped,
            "consistent": consistent,
            "verdicts": {"first": one, "swapped": two},
        }
    return {
        "run": pair.run, "reference": reference, "doc_id": pair.doc_id, "query": pair.query,
        "response": pair.response, "reference_response": pair.reference_response,
        "response_tokens": pair.response_tokens, "reference_tokens": pair.reference_tokens,
        "length_difference": pair.length_difference, "judgments": judgments,
    }


def _same_verdict(first: float, swapped: float, by_side: bool) -> bool:
    """Whether the two orders agree: the same outcome, or under the `side` rule the same side of a tie
    (a graded judge's `A>>B` and `A>B`), as `stats.position_inconsistency(by_side=...)` counts them."""
    if not by_side:
        return abs(first - swapped) <= 1e-9

    def side(outcome: float) -> int:
        return 0 if abs(outcome - 0.5) <= 1e-9 else (1 if outcome > 0.5 else -1)

    return side(first) == side(swapped)


def _check_output(output: Path) -> None:
    """A new folder, or one this command wrote: never a run folder or a user's other files."""
    if output.exists() and not output.is_dir():
        raise EFTEvalError(f"{output}: --output must be a folder, not a file")
    if not output.is_dir() or (output / PAIRWISE_FILE).is_file():
        return
    if any(path.name != LOCK_FILE for path in output.iterdir()):
        raise EFTEvalError(f"{output}: exists and is not an `eft-eval pairwise` folder (no {PAIRWISE_FILE}); "
                           "choose another --output")


def _record(stored: Sequence[StoredRun], reference: StoredRun, specs: Sequence[JudgeSpec],
            output: Path, round_robin: bool) -> dict[str, Any]:
    """pairwise.json: what was compared, when; `resumed` counts re-runs into the folder."""
    previous = read_json_object(output / PAIRWISE_FILE, missing_ok=True)
    return {
        "kind": "pairwise",
        "runs": [{"label": run.label, "path": str(run.path)} for run in stored],
        "reference": {"label": reference.label, "path": str(reference.path)},
        "judges": [spec.name for spec in specs],
        **({"round_robin": True} if round_robin else {}),
        "created": previous.get("created", now()),
        "updated": now(),
        **({"resumed": int(previous.get("resumed", 0)) + 1} if previous else {}),
    }
