"""Local lm-eval tasks (YAML + JSON lines written to a folder) and result readers for the lm-eval tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

GEN_DOCS = [
    {"question": "What is the capital of France?", "answer": "Paris"},
    {"question": "Why is the sky blue?", "answer": "scattering"},
    {"question": "How do I bake bread?", "answer": "knead"},
]
MC_DOCS = [
    {"question": "The quick brown fox", "choices": [" jumps", " sleeps", " runs"], "label": 0},
    {"question": "Paris is the capital of", "choices": [" France", " Spain"], "label": 0},
    {"question": "Plants make food from", "choices": [" light", " rocks", " salt"], "label": 0},
]
ROLL_DOCS = [
    {"text": "The quick brown fox jumps over the lazy dog. Sunlight scatters off air molecules, and blue light."},
    {"text": "Mix flour, water, salt and yeast, knead, let it rise, then bake."},
]

_TASKS = {
    "tiny_gen": (GEN_DOCS, """output_type: generate_until
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_target: "{{answer}}"
generation_kwargs:
  until: ["\\n", "?"]
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
"""),
    "tiny_mc": (MC_DOCS, """output_type: multiple_choice
doc_to_text: "{{question}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{label}}"
target_delimiter: ""
metric_list:
  - metric: acc
  - metric: acc_norm
"""),
    "tiny_roll": (ROLL_DOCS, """output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
metric_list:
  - metric: word_perplexity
  - metric: bits_per_byte
"""),
}


def write_tasks(folder: Path) -> Path:
    """Write the tiny tasks (`tiny_gen`, `tiny_mc`, `tiny_roll`); returns the `--include_path`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (docs, body) in _TASKS.items():
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
        header = (
            f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
            "test_split: test\n"
        )
        (folder / f"{name}.yaml").write_text(header + body)
    return folder


def read_output(output_path: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(results JSON, task -> samples sorted by doc_id) of one `--output_path` run."""
    [results_file] = output_path.rglob("results_*.json")
    samples = {}
    for task in _TASKS:
        files = list(output_path.rglob(f"samples_{task}_*.jsonl"))
        if files:
            rows = [json.loads(line) for line in files[0].read_text().splitlines()]
            samples[task] = sorted(rows, key=lambda row: row["doc_id"])
    return json.loads(results_file.read_text()), samples


def responses(samples: list[dict[str, Any]]) -> list[list[Any]]:
    """Per doc, the model's answers: (logprob, is_greedy) for loglikelihood, a float for
    loglikelihood_rolling, the text for generate_until (the samples file stores numbers as text)."""
    kind = {"tiny_gen": str, "tiny_roll": float}.get(_task_of(samples[0]))
    out = []
    for row in samples:
        answers: list[Any] = []
        for resp in row["resps"]:
            value = resp[0]
            if kind is None:
                answers.append((float(value[0]), str(value[1]) == "True"))
            else:
                answers.append(kind(value))
        out.append(answers)
    return out


def _task_of(row: dict[str, Any]) -> str:
    return ("tiny_gen" if "exact_match" in row["metrics"] else "tiny_roll"
            if "bits_per_byte" in row["metrics"] else "tiny_mc")


def subprocess_env() -> dict[str, str]:
    """Offline, one torch thread per process (the test machine's cores are shared)."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


