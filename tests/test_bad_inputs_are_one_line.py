"""Rough edges: each bad input is one line naming the file, field or value, with no
traceback and nothing written; a full disk keeps what was generated; identical prompts are asked
once; credentials in --base-url stay out of files; output files follow the umask."""

from __future__ import annotations

import base64
import errno
import gzip
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import HH_FILE, eft_spec, judge_answer, run_args

from eft_eval.cli import main
from eft_eval.pipeline import _store
from eft_eval.testing import LoopbackServer


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI expecting a user error; returns the one line it printed."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    # Progress bars may come first (lm-eval's own); the error is the one last line, no traceback.
    assert "Traceback" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith("eft-eval: error: ") and err.count("eft-eval: error: ") == 1, err
    return last


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(judge_answer) as running:
        yield running


def _judge(source: Path | str, out: Path, server: LoopbackServer, *extra: str) -> list[str]:
    return ["judge", "--input", str(source), "--judges", "factuality", "--output", str(out),
            "--base-url", server.base_url, "--no-progress", "--no-cache", *extra]


# --- judge --input ---------------------------------------------------------------------------

def test_judge_input_not_utf8_gz_and_folder(tmp_path: Path, server: LoopbackServer,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"query": "q", "response": "ok"}\n{"query": "caf\xe9", "response": "r"}\n')
    err = _error(capsys, _judge(latin1, tmp_path / "o1", server))
    assert f"{latin1}:2: not UTF-8 text (byte e9" in err and not (tmp_path / "o1").exists()

    err = _error(capsys, _judge(tmp_path, tmp_path / "o2", server))
    assert f"{tmp_path}: is a folder" in err and not (tmp_path / "o2").exists()

    packed = tmp_path / "responses.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"query": "Why?", "response": "Because."}) + "\n")
    assert main(_judge(packed, tmp_path / "o3", server)) == 0
    rows = [json.loads(line) for line in (tmp_path / "o3" / "samples.jsonl").read_text().splitlines()]
    assert rows[0]["response"] == "Because." and rows[0]["judgments"]["factuality"]["status"] == "scored"

    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"query": "q", "response": "r"}\n' * 50)[:40])
    err = _error(capsys, _judge(broken, tmp_path / "o4", server))
    assert str(broken) in err and not (tmp_path / "o4").exists()


def test_identical_prompts_are_asked_once_and_recorded_for_both(tmp_path: Path, server: LoopbackServer) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"query": "Why is the sky blue?", "response": "Rayleigh scattering."},
            {"query": "Why is the sky blue?", "response": "Rayleigh scattering."},  # same text, same query
            {"query": "Why is grass green?", "response": "Rayleigh scattering."},  # factuality shows no query
            {"query": "Why is grass green?", "response": "Chlorophyll."}]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(_judge(source, tmp_path / "out", server, "--concurrency", "8")) == 0
    assert server.request_count == 2
    judged = [json.loads(line)["judgments"]["factuality"]
              for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert judged[0] == judged[1] == judged[2] and judged[0]["status"] == "scored"


# --- report ----------------------------------------------------------------------------------

def _sample(score: Any, status: str = "scored") -> dict[str, Any]:
    return {"doc_id": 0, "task": "t", "model": "m", "query": "q", "response": "r",
            "judgments": {"factuality": {"status": status, "score": score, "reason": "", "raw": "", "attempts": 1}}}


@pytest.mark.parametrize(("rows", "expected"), [
    ([_sample(1.0), _sample("two")], ":2: judgment 'factuality' is scored but its score 'two' is not a number"),
    ([_sample(1.0), _sample(None)], ":2: judgment 'factuality' is scored but its score None is not a number"),
    ([_sample(1.0, "maybe")], ":1: judgment 'factuality' has status 'maybe'"),
    ([{"x": 1}], ":1: not a judged sample (no 'judgments' object)"),
])
def test_report_refuses_bad_and_foreign_samples(tmp_path: Path, rows: list[dict[str, Any]], expected: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    err = _error(capsys, ["report", str(folder)])
    assert f"{folder / 'samples.jsonl'}{expected}" in err
    assert not (folder / "results.json").exists()


# --- judge YAML, spec YAML, analyze tv ---------------------------------------------------------

JUDGE_YAML = """name: brief
description: A short test judge.
prompt: "Rate: {response}"
score: {kind: integer, min: 0, max: 10}
higher_is_better: true
judge_model: m
"""


@pytest.mark.parametrize(("text", "expected"), [
    (JUDGE_YAML + "sampling: {stream: true}\n", "field 'sampling.stream' must be false or absent"),
    (JUDGE_YAML.replace("min: 0", "min: .nan"), "field 'score.min' must be a finite number or null"),
    (JUDGE_YAML.replace("max: 10", "max: .inf"), "field 'score.max' must be a finite number or null"),
    (JUDGE_YAML + "sampling: {model: gpt-4}\n", "field 'sampling.model' cannot be set here"),
    (JUDGE_YAML.replace("Rate:", "Rat\xe9:").encode("latin-1"), ":3: not UTF-8 text"),
])
def test_unusable_judge_yaml_is_refused_at_load(tmp_path: Path, text: str | bytes, expected: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    judges = tmp_path / "judges"
    judges.mkdir()
    path = judges / "brief.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"query": "q", "response": "r"}) + "\n")
    err = _error(capsys, ["judge", "--input", str(source), "--judges", "brief", "--include-path", str(judges),
                          "--output", str(tmp_path / "out"), "--base-url", "http://127.0.0.1:9/v1"])
    assert str(path) in err and expected in err
    assert not (tmp_path / "out").exists()


def test_spec_yaml_and_tv_responses_not_utf8(tmp_path: Path, tiny_family: dict[str, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(f"base: {tiny_family['large_base']}\nft: {tiny_family['small_ft']}\n# caf\xe9\n".encode("latin-1"))
    err = _error(capsys, ["run", "hh_harmless", "--model", str(spec), "--output", str(tmp_path / "run"),
                          "--base-url", "http://127.0.0.1:9/v1"])
    assert f"{spec}:3: not UTF-8 text" in err and not (tmp_path / "run").exists()

    responses = tmp_path / "responses.jsonl"
    responses.write_bytes(b'{"query": "q", "response": "\xff"}\n')
    err = _error(capsys, ["analyze", "tv", "--model", eft_spec(tiny_family), "--responses", str(responses),
                          "--out", str(tmp_path / "tv")])
    assert f"{responses}:1: not UTF-8 text" in err and not (tmp_path / "tv").exists()

    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes("first\ncaf\xe9\n".encode("latin-1"))
    for command in (["generate"], ["analyze", "tv", "--out", str(tmp_path / "tv")]):
        err = _error(capsys, [*command, "--model", eft_spec(tiny_family), "--prompts-file", str(prompts)])
        assert f"{prompts}:2: not UTF-8 text (byte e9 at offset 9)" in err
    err = _error(capsys, ["generate", "--model", eft_spec(tiny_family), "--prompts-file", str(tmp_path / "none.txt")])
    assert f"{tmp_path / 'none.txt'}: prompts file (--prompts-file) not found" in err


def test_a_prompts_file_line_may_hold_unicode_line_separators(tmp_path: Path) -> None:
    import argparse

    from eft_eval.models.commands import read_prompts

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("one\u2028still one\n\ntwo é\n", encoding="utf-8")
    args = argparse.Namespace(prompt=[], prompts_file=prompts)
    assert read_prompts(args) == ["one\u2028still one", "two é"]


# --- run: data files, model paths ------------------------------------------------------------

def test_clear_messages_for_data_files_and_model_paths(tmp_path: Path, tiny_family: dict[str, Path],
                                                       server: LoopbackServer,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def argv(*, data: Path = HH_FILE, model: str = eft_spec(tiny_family)) -> list[str]:
        arguments = run_args(tiny_family, tmp_path / "run", server.base_url, "--limit", "1", "--judges", "factuality")
        arguments[arguments.index("--data-files") + 1] = str(data)
        arguments[arguments.index("--model") + 1] = model
        return arguments

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert f"data file {empty} holds no records" in _error(capsys, argv(data=empty))
    assert f"--data-files {tmp_path} is a folder" in _error(capsys, argv(data=tmp_path))
    assert not (tmp_path / "run").exists()

    missing = tmp_path / "no-such-model"
    err = _error(capsys, argv(model=f"base={missing},ft={tiny_family['small_ft']},ref={tiny_family['small_base']}"))
    assert f"base model {missing} does not exist" in err and "Repo id" not in err
    # The check is in the model loader, so every command that loads a model says the same.
    err = _error(capsys, ["generate", "--model",
                          f"base={tiny_family['small_base']},ft={missing},ref={tiny_family['small_base']}",
                          "--prompt", "hi"])
    assert f"ft model {missing} does not exist" in err and "Repo id" not in err


# --- run: a full disk, then resume; credentials; permissions; a corrupt generations line ------

class DiskFullAfter:
    """A file whose `n`-th write puts half its text on disk and then fails with ENOSPC."""

    def __init__(self, handle: Any, n: int) -> None:
        self._handle, self._n, self.writes = handle, n, 0

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes == self._n:
            self._handle.write(text[: len(text) // 2])
            self._handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return int(self._handle.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def test_full_disk_then_resume_credentials_permissions_and_a_corrupt_line(
    tmp_path: Path, tiny_family: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = tmp_path / "run"
    old_umask = os.umask(0o027)  # a user who keeps results from "other": every file must follow it
    try:
        _full_disk_then_resume(output, tiny_family, capsys, monkeypatch)
    finally:
        os.umask(old_umask)


def _full_disk_then_resume(output: Path, tiny_family: dict[str, Path], capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer(judge_answer) as server:
        secret_url = server.base_url.replace("http://", "http://alice:s3cr3t-pw@")
        argv = run_args(tiny_family, output, secret_url, "--limit", "3", "--batch-size", "1", "--judges", "factuality",
                        "--no-progress")

        real_init = _store.GenerationStore.__init__

        def full_disk_init(self: _store.GenerationStore, path: str | Path) -> None:
            real_init(self, path)
            self._file = DiskFullAfter(self._file, 2)  # type: ignore[assignment]

        monkeypatch.setattr(_store.GenerationStore, "__init__", full_disk_init)
        err = _error(capsys, argv)
        assert "generations.jsonl: cannot store a generation (No space left on device)" in err
        assert "the 1 stored before are kept" in err
        lines = (output / "generations.jsonl").read_bytes().splitlines(keepends=True)
        assert len(lines) == 2 and json.loads(lines[0]) and not lines[1].endswith(b"\n")  # one whole, one torn
        monkeypatch.setattr(_store.GenerationStore, "__init__", real_init)

        assert main(argv) == 0  # resumes: the torn line is cut off, the rest generated
        assert len((output / "generations.jsonl").read_text().splitlines()) == 3
        # The URL's credentials reached the server as basic auth (every transport), and every judgment scored.
        assert set(server.authorizations) == {"Basic " + base64.b64encode(b"alice:s3cr3t-pw").decode()}
        statuses = [json.loads(line)["judgments"]["factuality"]["status"]
                    for line in (output / "samples.jsonl").read_text().splitlines()]
        assert statuses == ["scored"] * 3

        # A corrupt line in the middle of generations.jsonl: one line naming it, nothing written.
        generations = output / "generations.jsonl"
        lines = generations.read_text().splitlines(keepends=True)
        generations.write_text(lines[0] + '{"key": "abc", "copy": \n' + "".join(lines[1:]))
        before = {p.name: p.read_bytes() for p in output.iterdir() if p.is_file() and p.name != ".eft-eval.lock"}
        err = _error(capsys, argv)
        assert f"{generations}:2: not a stored generation" in err
        assert {p.name: p.read_bytes() for p in output.iterdir() if p.is_file()
                and p.name != ".eft-eval.lock"} == before

    # Credentials in --base-url are in no file; the URL is, without them.
    for name in ("run.json", "results.json", "samples.jsonl", ".eft-eval.lock"):
        text = (output / name).read_text()
        assert "s3cr3t" not in text and "alice" not in text, name
    assert json.loads((output / "results.json").read_text())["judge_config"]["base_url"] == server.base_url
    # Every output file has the permissions the umask gives (0666 & ~027), none 0600.
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in output.iterdir() if p.is_file()}
    assert {"run.json", "samples.jsonl", "results.json", "generations.jsonl"} <= set(modes)
    assert set(modes.values()) == {0o640}, modes

