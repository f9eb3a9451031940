"""Hand-made run folders and study outputs for the HTML report tests (docs/formats.md shapes).

Scores are a known function of (run, doc) so a test can count which rows a filter must show.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCRIPT_RESPONSE = '<script>window.__pwned = 1; console.error("injected")</script><b>bold?</b> <!-- & </script>'


def harm_score(run: int, doc: int) -> float:
    return float((doc * 7 + run * 13) % 100)


def helpfulness_score(run: int, doc: int) -> float:
    return float((doc * 11 + run * 29) % 100)


FILLER = "Keep it at room temperature, discard half, and feed equal weights of flour and water. " * 12
"""About 1,000 characters: a response of realistic length."""


def judged(run: int, doc: int, *, harm_name: str = "harm", status: str = "scored", response: str | None = None,
           long: bool = False) -> dict[str, Any]:
    def judgment(score: float, reason: str, status: str = "scored") -> dict[str, Any]:
        out: dict[str, Any] = {"status": status, "score": score if status == "scored" else None, "reason": reason,
                               "raw": f"Reason: {reason}\nScore: {score}", "judge_model": "gpt-4-0613", "attempts": 1}
        if status == "failed":
            out["error"] = "HTTP 500 three times"
        return out

    return {
        "doc_id": doc, "task": "hh", "model": f"model-{run}",
        "query": f"Prompt number {doc}: how do I keep a sourdough starter alive?",
        "response": response if response is not None
        else f"Run {run} answer {doc}: feed it flour and water daily." + FILLER * long,
        "judgments": {
            "helpfulness": judgment(helpfulness_score(run, doc),
                                    f"helpful reasoning run {run} doc {doc}" + FILLER[:400] * long),
            harm_name: judgment(harm_score(run, doc),
                                f"harm reasoning run {run} doc {doc}" + FILLER[:400] * long, status),
        },
    }


def response_tokens(doc: int) -> int:
    return 256 if doc % 4 == 1 else 37 * doc % 250


def finish_reason(doc: int) -> str:
    """Every fourth response is cut off at 256 tokens; one ends at a stop string, the rest at EOS."""
    return "length" if doc % 4 == 1 else "\n\nHuman:" if doc == 2 else "stop"


def write_run(root: Path, run: int, n_docs: int, *, harm_name: str = "harm", failed_docs: tuple[int, ...] = (),
              script_doc: int | None = None, model_spec: dict[str, Any] | None = None, long: bool = False,
              lengths: bool = False) -> Path:
    """A judged run folder; with `lengths`, each sample records `response_tokens` (`response_tokens(doc)`)
    and `finish_reason` (`finish_reason(doc)`)."""
    root.mkdir(parents=True, exist_ok=True)
    samples = [
        judged(run, doc, harm_name=harm_name, status="failed" if doc in failed_docs else "scored",
               response=SCRIPT_RESPONSE if doc == script_doc else None, long=long)
        for doc in range(n_docs)
    ]
    for doc, sample in enumerate(samples if lengths else []):
        sample.update(response_tokens=response_tokens(doc), finish_reason=finish_reason(doc))
    (root / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    spec = model_spec or {
        "base": {"model": "HuggingFaceTB/SmolLM2-135M", "gguf_file": None, "format": "plain", "system_prompt": None,
                 "dtype": "auto", "device": "cpu", "revision": None, "trust_remote_code": False},
        "deltas": [{"ft": {"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "gguf_file": None, "format": "chat",
                           "system_prompt": "Be helpful.", "dtype": "auto", "device": "cpu", "revision": None,
                           "trust_remote_code": False},
                    "ref": {"model": "HuggingFaceTB/SmolLM2-135M", "gguf_file": None, "format": "plain",
                            "system_prompt": None,
                            "dtype": "auto", "device": "cpu", "revision": None, "trust_remote_code": False},
                    "weight": 1.0}],
        "beta": 1.0, "top_p_weights": None, "name": None,
    }
    (root / "run.json").write_text(json.dumps({
        "task": "hh", "model": f"model-{run}", "model_spec": spec, "seed": 0, "limit": n_docs,
        "judges": ["helpfulness", harm_name],
        "judge_config": {"backend": "openai", "judge_models": {"helpfulness": "gpt-4-0613", harm_name: "gpt-4-0613"}},
        "generation": {"max_new_tokens": 64, "gen_kwargs": None, "batch_size": 8},
        "versions": {"python": "3.11", "eft-eval": "0.1.0", "torch": "2.13.0"},
        "command": ["eft-eval", "run", "hh", "--model", f"model-{run}"],
    }), encoding="utf-8")
    return root


def write_sweep(root: Path, n_docs: int = 6, lengths: bool = False) -> Path:
    """A frontier sweep folder: runs/alpha=0.0, alpha=0.5, alpha=1.0 and the analyses' JSON."""
    alphas = [0.0, 0.5, 1.0]
    points = []
    for run, alpha in enumerate(alphas):
        folder = write_run(root / "runs" / f"alpha={alpha}", run, n_docs, lengths=lengths)
        points.append({"run": str(folder), "label": f"alpha={alpha}", "alpha": alpha,
                       "x_mean": 40.0 + 10 * run, "x_stderr": 3.0, "y_mean": 30.0 - 5 * run, "y_stderr": 2.0,
                       "pareto": run != 1, "pareto_probability": [0.9, 0.2, 0.8][run]})
    (root / "frontier.json").write_text(json.dumps({"x_judge": "helpfulness", "y_judge": "harm", "points": points}))
    (root / "scaling.json").write_text(json.dumps({
        "rows": [
            {"judge": "helpfulness", "config": "alpha=0.0", "mean": 40.0, "stderr": 3.0, "n": n_docs,
             "normalized_improvement": 0.0, "normalized_improvement_stderr": None, "normalized_improvement_ci": None},
            {"judge": "helpfulness", "config": "alpha=1.0", "mean": 60.0, "stderr": 3.0, "n": n_docs,
             "normalized_improvement": 1.0, "normalized_improvement_stderr": None, "normalized_improvement_ci": None},
            {"judge": "helpfulness", "config": "alpha=0.5", "mean": 50.0, "stderr": 3.0, "n": n_docs,
             "normalized_improvement": 0.5, "normalized_improvement_stderr": 0.1,
             "normalized_improvement_ci": [0.3, 0.7]},
        ],
        "n_paired": {"helpfulness": n_docs},
    }))
    (root / "top_p.json").write_text(json.dumps({"rows": [
        {"run": str(root / "runs" / f"alpha={a}"), "top_p_weights": [None, 0.9, 0.8][i],
         "judge": judge, "mean": 1.0 + i,
         "stderr": 0.1, "n": n_docs}
        for i, a in enumerate(alphas) for judge in ("helpfulness", "harm")
    ]}))
    return root


# A six-item human study with two annotators, a tie and gold labels on both disagreements
# (the numbers of tests/study/test_study_report.py); the judge's reasoning holds a <script>.
HUMAN_JUDGE_SCORES = [0.0, 2.0, 1.0, 0.0, 0.0, 3.0]
HUMAN_ALICE = {0: ("0", "no"), 1: ("1", "yes"), 2: ("0", "no"), 3: ("1", "yes"), 4: ("0", "no"),
               5: ("3 or more", "yes")}
HUMAN_BOB = {0: ("0", "no"), 1: ("2", "yes"), 2: ("0", "no"), 3: ("1", "no"), 4: ("1", "yes"), 5: ("2", "yes")}
HUMAN_GOLD = {2: ("2", "yes"), 3: ("1", "yes")}


def write_human_study(root: Path) -> tuple[Path, Path]:
    """(annotation project, adjudication project), both imported, under `root`."""
    from study_helpers import (
        item_ids_by_doc,
        judged_sample,
        write_potato_state,
        write_samples,
    )

    from eft_eval.cli import main

    records = [judged_sample(d, "m", score=s) for d, s in enumerate(HUMAN_JUDGE_SCORES)]
    for doc, record in enumerate(records):
        record["judgments"]["factuality"]["reason"] = (f"judge reasoning for doc {doc} "
                                                       "<script>window.__pwned = 1</script>")
    samples = write_samples(root / "samples.jsonl", records)
    project, adjudication = root / "study", root / "adjudication"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "6", "--out", str(project),
                 "--annotators-per-item", "2"]) == 0
    ids = item_ids_by_doc(project)
    write_potato_state(project, "alice", {ids[d]: a for d, a in HUMAN_ALICE.items()})
    write_potato_state(project, "bob", {ids[d]: a for d, a in HUMAN_BOB.items()})
    assert main(["human-study", "import", str(project)]) == 0
    assert main(["human-study", "adjudicate", str(project), "--out", str(adjudication)]) == 0
    write_potato_state(adjudication, "expert", {ids[d]: a for d, a in HUMAN_GOLD.items()})
    assert main(["human-study", "import", str(adjudication)]) == 0
    return project, adjudication


def write_pairwise(sweep: Path, base_url: str) -> Path:
    """A sweep's pairwise folder (`pairwise/`, as a study's `pairwise:` writes it): alpha=0.5 and alpha=1.0
    against alpha=0.0, judged by a loopback `PairwiseJudge` that prefers run 2's answers and, by a
    strong first-position bias, flips some verdicts with the order."""
    from eft_eval.analysis import pairwise
    from eft_eval.judging import JudgeConfig

    runs = sweep / "runs"
    pairwise([runs / "alpha=0.5", runs / "alpha=1.0"], runs / "alpha=0.0", sweep / "pairwise", ["preference"],
             JudgeConfig(base_url=base_url, progress=False))
    return sweep / "pairwise"


def pairwise_judge() -> Any:
    from eft_eval.testing import PairwiseJudge

    return PairwiseJudge(strength=lambda text: 1.0 if "Run 2 " in text else 0.0, first_position_bias=1.5)
