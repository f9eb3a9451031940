"""A run killed with SIGKILL (once while generating, once while judging) and re-run ends with the same
samples.jsonl as an uninterrupted run, and the judge server answered no request twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from lm_eval_helpers import subprocess_env
from pipeline_helpers import RESUME_LIMIT as LIMIT
from pipeline_helpers import judge_answer
from pipeline_helpers import resume_args as args

from eft_eval.cli import main
from eft_eval.testing import Drop, LoopbackServer, Reply


class KillingJudge:
    """Answers like `judge_answer`, records what it answered, and SIGKILLs the client on request `kill_at`."""

    def __init__(self) -> None:
        self.answered: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.kill_at: int | None = None
        self.seen = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply | Drop:
        with self.lock:
            self.seen += 1
            if self.kill_at is not None and self.seen == self.kill_at and self.process is not None:
                os.kill(self.process.pid, signal.SIGKILL)
                return Drop()
            self.answered.append(json.dumps(body["messages"], sort_keys=True))
        return judge_answer(body)


def start(arguments: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "eft_eval.cli", *arguments], stdout=handle,
                                stderr=subprocess.STDOUT, env=subprocess_env())


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(path.read_bytes().splitlines()) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never reached {count} lines (exit code {process.poll()})")


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tiny_family: dict[str, Path], tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    judge = KillingJudge()
    with LoopbackServer(judge) as server:
        output = tmp_path / "killed"
        generations = output / "generations.jsonl"

        # 1. Killed while generating: some generations are stored, the rest are not.
        first = start(args(tiny_family, output, server.base_url), log)
        wait_for_lines(generations, 2, first)
        first.send_signal(signal.SIGKILL)
        first.wait()
        stored_after_kill = len(generations.read_bytes().splitlines())
        assert 2 <= stored_after_kill < LIMIT, log.read_text()[-3000:]
        assert judge.seen == 0 and not (output / "samples.jsonl").exists()

        # 2. Resumed, then killed by the judge server on its 5th request (4 answered before it).
        judge.kill_at = 5
        judge.process = start(args(tiny_family, output, server.base_url), log)
        assert judge.process.wait(timeout=300) == -signal.SIGKILL, log.read_text()[-3000:]
        assert len(judge.answered) == 4 and not (output / "samples.jsonl").exists()
        keys = [json.loads(line)["key"] for line in generations.read_text().splitlines()]
        assert len(keys) == LIMIT and len(set(keys)) == LIMIT  # the rest generated once, nothing twice

        # 3. Resumed again: finishes.
        judge.kill_at = None
        third = start(args(tiny_family, output, server.base_url), log)
        assert third.wait(timeout=300) == 0, log.read_text()[-3000:]
        assert generations.read_text().splitlines()[: LIMIT] == generations.read_text().splitlines()

    # The judge answered each request once: finished judgments were replayed, never asked again.
    assert max(Counter(judge.answered).values()) == 1
    assert len(judge.answered) == LIMIT * 3

    with LoopbackServer(judge_answer) as server:
        reference = tmp_path / "uninterrupted"
        assert main(args(tiny_family, reference, server.base_url)) == 0
    resumed_rows = (output / "samples.jsonl").read_text()
    assert resumed_rows == (reference / "samples.jsonl").read_text()
    assert json.loads((output / "results.json").read_text())["judges"] == json.loads(
        (reference / "results.json").read_text())["judges"]
    assert json.loads((output / "run.json").read_text())["resumed"] == 2


def test_sampled_generations_resume_from_a_torn_file(tiny_family: dict[str, Path], tmp_path: Path) -> None:
    """Sampling (which lm-eval's own cache never stores) resumes to the same texts, and a last line cut
    short by a kill is dropped, not parsed or appended to."""
    with LoopbackServer(judge_answer) as server:
        sampled = [*args(tiny_family, tmp_path / "whole", server.base_url), "--limit", "4", "--max-new-tokens", "12",
                   "--gen-kwargs", "do_sample=true,temperature=1.0", "--judges", "factuality"]
        assert main(sampled) == 0
        whole = tmp_path / "whole"
        torn = tmp_path / "torn"
        torn.mkdir()
        (torn / "run.json").write_bytes((whole / "run.json").read_bytes())
        lines = (whole / "generations.jsonl").read_bytes().splitlines(keepends=True)
        (torn / "generations.jsonl").write_bytes(b"".join(lines[:2]) + lines[2][:25])  # killed mid-write
        sampled[sampled.index("--output") + 1] = str(torn)
        assert main(sampled) == 0
    texts = [json.loads(line)["text"] for line in (torn / "generations.jsonl").read_text().splitlines()]
    assert len(texts) == 4 and len(set(texts)) > 1
    assert (torn / "samples.jsonl").read_text() == (whole / "samples.jsonl").read_text()
