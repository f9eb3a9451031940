"""End to end with a real Potato server on loopback: prepare, serve, annotate every item over
HTTP as the annotation page does, import, adjudicate (a second served project), import gold, report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from study_helpers import PotatoAnnotator, judged_sample, write_samples

from eft_eval.cli import main
from eft_eval.study._potato import PotatoServer, free_port

Served = Callable[[Path], str]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Served]:
    """Start Potato for a project folder; every server started is stopped at teardown."""
    servers: list[PotatoServer] = []

    def start(project: Path) -> str:
        server = PotatoServer(project, log_file=tmp_path / f"potato-{len(servers)}.log")
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def _doc_id(item: dict[str, Any]) -> int:
    # The fixture's responses start with "Answer <doc_id> from <model>".
    return int(item["data"]["response"].split()[1])


def human_says_error(doc_id: int, annotator: str) -> bool:
    """Crowd policy: error when doc_id % 3 == 0; carol alone also flags doc_ids 1 and 2 (a minority)."""
    return doc_id % 3 == 0 or (annotator == "carol" and doc_id in (1, 2))


def judge_score(doc_id: int) -> float:
    return float(doc_id % 2) * 2  # judge: error (score 2) on odd doc_ids


def gold_says_error(doc_id: int) -> bool:
    """Expert policy: sides with the judge when doc_id % 4 < 2, with the crowd otherwise."""
    return doc_id % 2 == 1 if doc_id % 4 < 2 else doc_id % 3 == 0


def _answers(error: bool, count: str) -> dict[str, str]:
    return {"num_errors": count if error else "0", "any_error": "yes" if error else "no"}


@pytest.mark.slow
def test_potato_study_end_to_end(tmp_path: Path, serve: Served, capsys: pytest.CaptureFixture[str]) -> None:
    records = [judged_sample(d, "eft-up", score=judge_score(d)) for d in range(12)]
    records += [judged_sample(d, "small-ft", score=0.0) for d in range(12)]
    records += [judged_sample(12, "eft-up", status="failed"), judged_sample(13, "eft-up", status="abstained")]
    samples = write_samples(tmp_path / "samples.jsonl", records)
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "9", "--out", str(project),
                 "--target-error-rate", "0.5", "--annotators-per-item", "3", "--seed", "7"]) == 0
    manifest = json.loads((project / "study.json").read_text())
    assert manifest["selection"]["model"] == "eft-up"  # judged error rate 0.5 vs 0.0 for small-ft
    assert manifest["selection"]["excluded"] == {"judge failed": 1, "judge abstained": 1, "other model": 12}

    # Three crowd annotators, each served every item by Potato in its own order.
    url = serve(project)
    seen: dict[str, list[int]] = {}
    for name in ("alice", "bob", "carol"):
        annotator = PotatoAnnotator(url, name)
        annotator.register()
        done = annotator.annotate_all(lambda item, name=name: _answers(human_says_error(_doc_id(item), name), "2"))
        seen[name] = sorted(int(i.split("-")[1]) for i in done)
    assert all(len(ids) == 9 for ids in seen.values())
    # Logging in again later finds the work done: nothing left to annotate.
    returning = PotatoAnnotator(url, "alice")
    returning.login()
    assert returning.current_item() is None

    assert main(["human-study", "import", str(project)]) == 0
    assert "27 answers from 3 annotator(s)" in capsys.readouterr().out
    doc_of = {item["item_id"]: item["source"]["doc_id"] for item in manifest["items"]}
    labels = {json.loads(line)["item_id"]: json.loads(line)
              for line in (project / "labels.jsonl").read_text().splitlines()}
    for item_id, label in labels.items():
        assert label["label"] == (doc_of[item_id] % 3 == 0)  # carol's extra flags are outvoted 2:1
        assert len(label["answers"]) == 3 and not label["tie"]

    # Adjudication: only the disagreements, served to one expert.
    disagreements = {i for i, d in doc_of.items() if (d % 3 == 0) != (d % 2 == 1)}
    adjudication = tmp_path / "adjudication"
    assert main(["human-study", "adjudicate", str(project), "--out", str(adjudication)]) == 0
    adj_items = json.loads((adjudication / "study.json").read_text())["items"]
    assert {i["item_id"] for i in adj_items} == disagreements
    expert = PotatoAnnotator(serve(adjudication), "expert")
    expert.register()
    assert len(expert.annotate_all(lambda item: _answers(gold_says_error(_doc_id(item)), "1"))) == len(disagreements)
    assert main(["human-study", "import", str(adjudication)]) == 0

    out = tmp_path / "report"
    assert main(["human-study", "report", str(project), "--adjudication", str(adjudication), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    docs = list(doc_of.values())
    agree = [(d % 3 == 0) == (d % 2 == 1) for d in docs]
    assert report["agreement"]["value"] == pytest.approx(sum(agree) / len(docs))
    assert report["agreement"]["n"] == 9 and report["n_annotators"] == 3
    disagree_docs = [doc_of[i] for i in disagreements]
    judge_right = [gold_says_error(d) == (d % 2 == 1) for d in disagree_docs]
    assert report["gold"]["judge_matches_gold"]["value"] == pytest.approx(sum(judge_right) / len(disagree_docs))
    assert report["gold"]["humans_match_gold"]["value"] == pytest.approx(1 - sum(judge_right) / len(disagree_docs))
    assert [a["annotator"] for a in report["annotators"]] == ["alice", "bob", "carol"]
    assert "<svg" in (out / "report.html").read_text()


@pytest.mark.slow
def test_serve_command_runs_potato_on_loopback_until_interrupted(tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "samples.jsonl", [judged_sample(d, "m", score=0.0) for d in range(2)])
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "2", "--out", str(project)]) == 0
    port = free_port()
    command = [sys.executable, "-m", "eft_eval.cli", "human-study", "serve", str(project), "--port", str(port)]
    log = tmp_path / "serve.log"  # a file, not a pipe nobody reads while waiting: a full pipe blocks Potato
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Conditions, each with a deadline far beyond what an idle machine needs (a few seconds).
        assert wait_until(lambda: health(port) == 200 or process.poll() is not None, WAIT_S)
        assert health(port) == 200, log.read_text()[-3000:]
        process.send_signal(signal.SIGINT)  # Ctrl-C in the terminal
        try:
            process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`human-study serve` still running {WAIT_S:.0f} s after Ctrl-C: {log.read_text()[-3000:]}")
        assert f"http://127.0.0.1:{port}/" in log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Potato is gone with it: nothing answers on the port any more.
    assert wait_until(lambda: health(port) is None, WAIT_S), (
        f"Potato still answers on port {port} after the command ended")


WAIT_S = 120.0


def health(port: int) -> int | None:
    """The status of Potato's /health on loopback, None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return int(response.status)
    except OSError:
        return None


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
