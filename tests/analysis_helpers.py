"""Hand-made run folders with known numbers, in the layout `eft-eval run` writes
(eft_eval/pipeline/_outputs.py, docs/formats.md): run.json, samples.jsonl, results.json."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DIRECTIONS = {"helpfulness": True, "harm": False, "harmlessness": False, "factuality": False}
"""higher_is_better of the built-in judges, as results.json records it."""

Score = float | str | None
"""A number (scored), "abstained", "failed", or None (no judgment by that judge)."""


def judgment(score: Score) -> dict[str, Any] | None:
    if score is None:
        return None
    if isinstance(score, str):
        return {"status": score, "score": None, "reason": "", "raw": "", "judge_model": "test", "attempts": 1,
                "usage": {"prompt_tokens": 0, "completion_tokens": 0},
                **({"error": "boom"} if score == "failed" else {})}
    return {"status": "scored", "score": float(score), "reason": "", "raw": f"Score: {score}", "judge_model": "test",
            "attempts": 1, "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


def model_spec(alpha: float | None = None, base: str = "base-7b", top_p_weights: float | None = None) -> dict[str, Any]:
    """run.json's `model_spec` (EFTSpec.to_dict()): two deltas weighted alpha, 1 - alpha when alpha is given."""
    def component(model: str, fmt: str = "plain") -> dict[str, Any]:
        return {"model": model, "gguf_file": None, "format": fmt, "system_prompt": None, "dtype": "auto",
                "device": "cpu", "revision": None, "trust_remote_code": False}
    deltas = [{"ft": component("ft-small", "chat"), "ref": component("ref-small"), "weight": 1.0}]
    if alpha is not None:
        deltas = [{"ft": component("helpful", "chat"), "ref": component("ref-small"), "weight": alpha},
                  {"ft": component("harmless", "chat"), "ref": component("ref-small"), "weight": 1 - alpha}]
    return {"base": component(base), "deltas": deltas, "beta": 1.0, "top_p_weights": top_p_weights, "name": None}


def write_run(
    folder: Path,
    scores: Mapping[str, Sequence[Score]],
    *,
    spec: Mapping[str, Any] | None = None,
    responses: Sequence[str] | None = None,
    doc_ids: Sequence[int] | None = None,
    task: str = "hh",
    model: str | None = None,
    lengths: Sequence[int | None] | None = None,
) -> Path:
    """A run folder whose judge `j` gave `scores[j][i]` to document i; each sample's `model` field
    holds `model` (default: the folder's name); `lengths[i]`, when given, is document i's
    `response_tokens` (None: not recorded), cut off (`finish_reason: length`) at 256 tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(scores.values())))
    ids = list(doc_ids) if doc_ids is not None else list(range(n))
    rows = []
    for i in range(n):
        judgments = {name: judgment(values[i]) for name, values in scores.items() if values[i] is not None}
        rows.append({"doc_id": ids[i], "task": task, "model": model or folder.name, "query": f"Question {ids[i]}?",
                     "response": responses[i] if responses is not None else f"Answer {ids[i]}.",
                     "judgments": judgments, "doc": {"id": ids[i]}})
        if lengths is not None and lengths[i] is not None:
            rows[-1].update(response_tokens=lengths[i], finish_reason="length" if lengths[i] == 256 else "stop")
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "run.json").write_text(json.dumps({"task": task, "model": folder.name,
                                                 "model_spec": dict(spec or model_spec()), "seed": 0,
                                                 "judges": list(scores)}))
    (folder / "results.json").write_text(json.dumps({"task": task, "judges": {
        name: {"higher_is_better": DIRECTIONS.get(name, True)} for name in scores}}))
    return folder
