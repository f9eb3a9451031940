"""Runs as the report shows them: judges with their direction, configuration rows, results rows,
and the compact sample records the page's sample browser reads from its one JSON block.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.judging import JudgeSpec
from eft_eval.models import delta_roles
from eft_eval.runfolder import StoredRun as RunData  # not through _collect, which imports this module
from eft_eval.stats import summarize_judgments, summarize_jury

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeInfo:
    """What a reader needs to read a judge's numbers."""

    name: str
    description: str
    higher_is_better: bool
    former_names: tuple[str, ...] = ()
    integer: bool = False
    """Scores are counts (factual errors): histograms get one bar per value."""
    score_range: tuple[float | None, float | None] = (None, None)
    """The judge's valid scores (0-100 for helpfulness and harm), for shared histogram bins."""

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def axis_label(self) -> str:
        """e.g. `harm (lower is better)`: every axis and column names its direction."""
        return f"{self.name} ({self.direction})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "higher_is_better": self.higher_is_better,
                "direction": self.direction, "former_names": list(self.former_names)}


def known_judges(include_paths: Sequence[str] = ()) -> dict[str, JudgeSpec]:
    """The judge plugins available now; a broken include path only loses descriptions."""
    from eft_eval.judging import discover_judges

    try:
        return discover_judges(list(include_paths))
    except EFTEvalError as error:
        logger.warning("judge descriptions unavailable: %s", error)
        return {}


def judge_infos(runs: list[RunData], specs: dict[str, JudgeSpec], renamed: dict[str, str]) -> list[JudgeInfo]:
    """Every judge appearing in the runs, in first-seen order."""
    names = dict.fromkeys(name for run in runs for name in run.judge_names())
    infos = []
    for name in names:
        spec = specs.get(name)
        former = tuple(old for old, new in renamed.items() if new == name)
        if spec is not None:
            infos.append(JudgeInfo(name, spec.description, spec.higher_is_better, former, spec.score.kind == "integer",
                                   (spec.score.min, spec.score.max)))
            continue
        # A judge not installed here: its direction from a results.json that recorded it.
        higher = next((d for run in runs if (d := run.recorded_direction(name)) is not None), True)
        infos.append(JudgeInfo(name, "(judge definition not found here)", higher, former))
    return infos


def results_rows(run: RunData, judges: list[JudgeInfo]) -> list[dict[str, Any]]:
    """Mean, standard error and the three counts per judge, recomputed from the samples."""
    rows = []
    for judge in judges:
        judgments = [j for j in run.judgments(judge.name) if j is not None]
        if not judgments:
            continue
        summary = summarize_judgments(judgments)
        if summary.get("jury"):  # a jury: alpha at the level of the judge's scores, and each model's mean
            summary["jury"] = summarize_jury(judgments, _ScoreOwner(judge))
            summary["jury_text"] = jury_text(summary["jury"])
        rows.append({"judge": judge.name, "direction": judge.direction, **summary})
    return rows


@dataclass(frozen=True)
class _ScoreOwner:
    """A judge's score as `stats.summarize_jury` reads it (kind, min, max), from its `JudgeInfo`."""

    judge: JudgeInfo

    @property
    def score(self) -> Any:
        from types import SimpleNamespace

        low, high = self.judge.score_range
        return SimpleNamespace(kind="integer" if self.judge.integer else "number", min=low, max=high)

    def __getattr__(self, name: str) -> Any:  # aggregation, higher_is_better: a plain mean summary's
        return {"name": self.judge.name, "higher_is_better": self.judge.higher_is_better,
                "aggregation": "mean", "aggregation_params": {}}[name]


def jury_text(jury: dict[str, Any]) -> str:
    """`gpt-4o 37.5, gpt-4o-mini 39.5; alpha 0.93 (95% CI 0.85-0.97, interval)`: the results
    table's jury column."""
    means = ", ".join(f"{model} {summary['mean']:.3g}" if summary.get("mean") is not None else f"{model} -"
                      for model, summary in jury["models"].items())
    agreement = jury.get("agreement") or {}
    alpha = agreement.get("krippendorff_alpha") or {}
    if alpha.get("value") is None:
        return f"{means}; alpha undefined"
    interval = (f"95% CI {alpha['ci_low']:.2f}-{alpha['ci_high']:.2f}, " if alpha.get("ci_low") is not None
                and alpha.get("ci_high") is not None else "")
    return f"{means}; Krippendorff's alpha {alpha['value']:.2f} ({interval}{agreement.get('level')})"


def _component_rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """base / ft / ref / ft2 / ref2 ... from run.json's `model_spec` (EFTSpec.to_dict)."""
    rows = []
    if isinstance(spec.get("base"), dict):
        rows.append({"role": "base", "weight": None, **_component(spec["base"])})
    for index, delta in enumerate(spec.get("deltas") or [], start=1):
        for key, role in zip(("ft", "ref"), delta_roles(index)):
            if isinstance(delta.get(key), dict):
                rows.append({"role": role, "weight": delta.get("weight") if key == "ft" else None,
                             **_component(delta[key])})
    return rows


def _component(component: dict[str, Any]) -> dict[str, Any]:
    model = str(component.get("model", ""))
    if component.get("gguf_file"):
        model = f"{model}/{component['gguf_file']}"
    return {"model": model, "format": component.get("format"), "system_prompt": component.get("system_prompt"),
            "dtype": component.get("dtype"), "device": component.get("device")}


def _length_summary(length: Any) -> str | None:
    """results.json's `length`: `57.3 tokens (95% CI 50.1-64.0); 12.5% cut off (95% CI 4.2-20.8)`."""
    if not isinstance(length, dict):
        return None
    tokens, cut = length.get("response_tokens") or {}, length.get("cut_off") or {}

    def interval(estimate: dict[str, Any], scale: float, unit: str) -> str:
        value, low, high = (estimate.get(k) for k in ("value", "ci_low", "ci_high"))
        if value is None:
            return "-"
        text = f"{value * scale:.1f}{unit}"
        if low is None or high is None:
            return text
        return f"{text} (95% CI {low * scale:.1f}-{high * scale:.1f})"

    return f"{interval(tokens, 1.0, ' tokens')}; {interval(cut, 100.0, '%')} cut off at the token limit"


def _revisions(revisions: Any, data_files: Any) -> str | None:
    """run.json's resolved component revisions and task data digests, one `name: revision` each."""
    parts = [f"{role}: {entry.get('revision') or 'unknown'}" for role, entry in (revisions or {}).items()
             if isinstance(entry, dict)]
    parts += [f"{Path(str(entry.get('path'))).name}: sha256:{entry.get('sha256')}" for entry in data_files or []
              if isinstance(entry, dict)]
    return "; ".join(parts) or None


def _judge_cost(cost: Any) -> str | None:
    if not isinstance(cost, dict) or "total_usd" not in cost:
        return None
    from eft_eval.judging import describe_cost

    return describe_cost(cost).removeprefix("judge cost: ")


def config_view(run: RunData) -> dict[str, Any]:
    """The run's configuration as (name, value) rows, components and versions."""
    record = run.run
    spec: dict[str, Any] = record["model_spec"] if isinstance(record.get("model_spec"), dict) else {}
    judge_config = record.get("judge_config") or run.results.get("judge_config") or {}
    judge_models = dict(judge_config.get("judge_models") or {})
    if not judge_models:  # a bare samples file: the judge model each judgment names
        for sample in run.rows:
            for name, judgment in (sample.get("judgments") or {}).items():
                judge_models.setdefault(name, str(judgment.get("judge_model", "?")))
    generation = record.get("generation") or {}
    rows: list[tuple[str, Any]] = [
        ("Task", run.task),
        ("Model spec", record.get("model") or run.rows[0].get("model")),
        ("Preset", record.get("preset")),
        ("beta", spec.get("beta")),
        ("top_p_weights", spec.get("top_p_weights")),
        ("Seed", record.get("seed")),
        ("Documents", f"{len(run.rows)}" + (f" (--limit {record['limit']})" if record.get("limit") else "")),
        ("Judges", ", ".join(f"{name}: {model}" for name, model in judge_models.items())),
        ("Judge backend", judge_config.get("backend")),
        ("Judge mode", judge_config.get("mode")),
        ("Judge cost", _judge_cost(run.results.get("cost"))),  # the cost ledger
        ("Max new tokens", generation.get("max_new_tokens")),
        ("Generation kwargs", generation.get("gen_kwargs")),
        ("Batch size", generation.get("batch_size")),
        ("Response length", _length_summary(run.results.get("length"))),
        ("Revisions", _revisions(record.get("revisions"), record.get("task_data_files"))),
        ("Created", record.get("created")),
        ("Command", " ".join(record["command"]) if isinstance(record.get("command"), list) else record.get("command")),
        ("Folder", str(run.path)),
    ]
    return {
        "rows": [(name, value) for name, value in rows if value not in (None, "")],
        "components": _component_rows(spec),
        "versions": record.get("versions") or {},
    }


def sample_records(runs: list[RunData], judges: list[JudgeInfo]) -> tuple[list[dict[str, Any]], list[str]]:
    """Compact records for the page and the de-duplicated prompts they point to.

    A sample is `{"r": run index, "d": doc_id, "q": prompt index, "a": response, "j": {judge:
    [status, score, reason, error]}}`, plus `"n": response tokens, "f": finish reason` when the
    sample records them; two runs of one task on the same prompt share `q`, which is what the
    side-by-side view groups by.
    """
    prompts: dict[tuple[str, str], int] = {}
    records = []
    names = [judge.name for judge in judges]
    for index, run in enumerate(runs):
        for sample in run.rows:
            query = str(sample.get("query", ""))
            key = (str(sample.get("task", run.run.get("task", ""))), query)
            q = prompts.setdefault(key, len(prompts))
            judgments = sample.get("judgments") or {}
            j = {}
            for name in names:
                judgment = judgments.get(name)
                if isinstance(judgment, dict):
                    score = judgment.get("score")
                    if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
                        score = None  # JSON.parse has no NaN; only scored judgments carry a number
                    j[name] = [judgment.get("status", "failed"), score, judgment.get("reason") or "",
                               judgment.get("error") or ""]
            records.append({"r": index, "d": sample.get("doc_id"), "q": q,
                            "a": str(sample.get("response", "")), "j": j, **_length_keys(sample)})
    return records, [query for _, query in prompts]


def _length_keys(sample: dict[str, Any]) -> dict[str, Any]:
    """`n` (response tokens) and `f` (finish reason), when recorded: older runs have neither."""
    tokens, reason = sample.get("response_tokens"), sample.get("finish_reason")
    keys: dict[str, Any] = {}
    if isinstance(tokens, int) and not isinstance(tokens, bool):
        keys["n"] = tokens
    if isinstance(reason, str):
        keys["f"] = reason
    return keys


__all__ = ["JudgeInfo", "config_view", "judge_infos", "known_judges", "results_rows", "sample_records"]
