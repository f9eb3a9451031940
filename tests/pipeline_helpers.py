"""What the pipeline's tests share with the judging, sweep, lock and demo tests: the HH-RLHF sample,
a deterministic judge, and the command lines of a small run."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from eft_eval.testing import Reply

HH_DATA = Path(__file__).resolve().parent / "data" / "hh-rlhf"
HH_FILE = HH_DATA / "harmless-base-sample.jsonl.gz"
"""400 real lines of HH-RLHF harmless-base test: 300 single-turn, 100 multi-turn (see its README)."""


def single_turn_queries(path: Path = HH_FILE) -> set[str]:
    """The Human turns of the file's single-turn dialogues, parsed independently of tasks/utils.py."""
    found = set()
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            chosen = json.loads(line)["chosen"]
            turns = chosen.split("\n\nHuman: ")
            if len(turns) == 2 and chosen.count("\n\nAssistant: ") == 1:
                found.add(turns[1].split("\n\nAssistant: ")[0].strip())
    return found


def judge_answer(body: dict[str, Any]) -> Reply:
    """A deterministic judge: the score is a hash of the request, so a swapped judgment shows."""
    text = json.dumps(body["messages"], sort_keys=True)
    return Reply(f"Reason: scripted.\nScore: {int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10}")


def eft_spec(family: dict[str, Path]) -> str:
    return f"base={family['large_base']},ft={family['small_ft']},ref={family['small_base']}"


def run_args(family: dict[str, Path], output: Path, base_url: str, *extra: str) -> list[str]:
    return ["run", "hh_harmless", "--model", eft_spec(family), "--data-files", str(HH_FILE), "--limit", "4",
            "--max-new-tokens", "8", "--batch-size", "2", "--base-url", base_url, "--output", str(output), *extra]


RESUME_LIMIT = 6


def resume_args(family: dict[str, Path], output: Path, base_url: str) -> list[str]:
    # --batch-size 1: each generation is stored as it finishes; --concurrency 1: at most one judge
    # request is in flight, so a kill cuts off exactly the request that triggered it.
    return ["run", "hh_harmless", "--model", eft_spec(family), "--data-files", str(HH_FILE),
            "--limit", str(RESUME_LIMIT), "--max-new-tokens", "48", "--batch-size", "1", "--base-url", base_url,
            "--output", str(output), "--concurrency", "1", "--no-progress"]


OWN_TASK = """\
task: own_prompts
output_type: generate_until
dataset_path: json
dataset_kwargs:
  data_files: {{test: {data}}}
test_split: test
doc_to_text: "{{{{query}}}}"
doc_to_target: ""
generation_kwargs: {{until: ["Human:"], max_gen_toks: 40, do_sample: false}}
metric_list: [{{metric: bypass, aggregation: bypass, higher_is_better: true}}]
metadata: {{judges: [helpfulness]}}
"""


def own_task(folder: Path) -> Path:
    """An include folder with a task of one's own (its data file beside it) that stops at `Human:`."""
    folder.mkdir()
    data = folder / "prompts.jsonl"
    data.write_text("".join(json.dumps({"query": q}) + "\n" for q in ("Say hi.", "Name a colour.")))
    (folder / "own_prompts.yaml").write_text(OWN_TASK.format(data=json.dumps(str(data))))
    return folder
