"""One run per folder: two real `eft-eval run` processes into one folder; the
second stops at once with one line naming the holder. SIGKILL of the holder leaves no stale lock:
the same command then resumes. Default output paths differ per seed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from lm_eval_helpers import subprocess_env
from pipeline_helpers import judge_answer
from pipeline_helpers import resume_args as args

from eft_eval.cli import main
from eft_eval.errors import EFTEvalError
from eft_eval.locking import LOCK_FILE, FolderLockedError, lock_folder
from eft_eval.models import parse_spec
from eft_eval.pipeline._run import RunConfig, default_output
from eft_eval.testing import LoopbackServer, Reply


class GatedJudge:
    """Answers like `judge_answer` once `open` is set; until then every request waits (the run
    holding the folder stays busy judging)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.arrived = threading.Event()

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.arrived.set()
        self.open.wait(120)
        return judge_answer(body)


def _start(arguments: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "eft_eval.cli", *arguments], stdout=subprocess.DEVNULL,
                                stderr=handle, env=subprocess_env())


@pytest.mark.slow
def test_a_second_run_into_a_busy_folder_stops_and_a_killed_holder_leaves_no_lock(
    tiny_family: dict[str, Path], tmp_path: Path
) -> None:
    judge = GatedJudge()
    output = tmp_path / "run"
    with LoopbackServer(judge) as server:
        first_args = [*args(tiny_family, output, server.base_url), "--limit", "2", "--judges", "factuality"]
        first = _start(first_args, tmp_path / "first.log")
        try:
            assert judge.arrived.wait(300), (tmp_path / "first.log").read_text()[-3000:]
            holder = json.loads((output / LOCK_FILE).read_text())
            assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
            assert holder["what"] == "eft-eval run" and holder["command"].startswith("eft-eval run hh_harmless")

            # Another seed into the same folder, at the same time: refused before it touches anything.
            second_args = [*first_args, "--seed", "1"]
            started = time.monotonic()
            second = subprocess.run([sys.executable, "-m", "eft_eval.cli", *second_args], capture_output=True,
                                    text=True, env=subprocess_env(), timeout=300, check=False)
            assert second.returncode == 2, second.stderr[-3000:]
            line = second.stderr.strip()
            assert len(line.splitlines()) == 1, line
            assert f"in use by pid {first.pid} on {socket.gethostname()}, started {holder['started']}" in line
            assert ": eft-eval run hh_harmless --model" in line
            assert time.monotonic() - started < 120  # it did not wait for the first run
            assert json.loads((output / "run.json").read_text())["seed"] == 0  # the holder's run.json
        finally:
            first.send_signal(signal.SIGKILL)  # kill -9 mid-judging
            first.wait()
            judge.open.set()

        # No stale lock: the same command resumes in the folder and finishes.
        assert (output / LOCK_FILE).exists()
        resumed = _start(first_args, tmp_path / "resumed.log")
        assert resumed.wait(timeout=300) == 0, (tmp_path / "resumed.log").read_text()[-3000:]
    run = json.loads((output / "run.json").read_text())
    assert run["seed"] == 0 and run["resumed"] == 1
    assert len((output / "samples.jsonl").read_text().splitlines()) == 2


def test_lock_folder_names_the_holder_and_releases_on_exit(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    with lock_folder(folder, "eft-eval sweep") as lock_path:
        assert lock_path == folder / LOCK_FILE
        with pytest.raises(FolderLockedError,
                           match=rf"in use by pid {os.getpid()} "), lock_folder(folder, "eft-eval sweep"):
            pass
        # Another process sees the lock too (flock is per open file, so this is the real test).
        probe = subprocess.run([sys.executable, "-c", (
            "import sys; from eft_eval.locking import lock_folder\n"
            f"try:\n    lock_folder({str(folder)!r}, 'x').__enter__()\nexcept Exception as e:\n    "
            "print(e); sys.exit(3)"
        )], capture_output=True, text=True, env=subprocess_env(), check=False)
        assert probe.returncode == 3 and f"pid {os.getpid()}" in probe.stdout
    with lock_folder(folder, "eft-eval sweep"):  # released at the end of the block
        pass
    with pytest.raises(EFTEvalError, match="is a file"):
        (tmp_path / "file").write_text("x")
        with lock_folder(tmp_path / "file", "eft-eval run"):
            pass


def test_default_output_differs_per_seed_and_settings(tiny_family: dict[str, Path]) -> None:
    spec = parse_spec(f"base={tiny_family['large_base']},ft={tiny_family['small_ft']},ref={tiny_family['small_base']}")
    base = RunConfig(task="hh", model="m")
    paths = {
        default_output(base, spec),
        default_output(RunConfig(task="hh", model="m", seed=1), spec),
        default_output(RunConfig(task="hh", model="m", max_new_tokens=16), spec),
        default_output(RunConfig(task="hh", model="m", gen_kwargs="do_sample=true"), spec),
    }
    assert len(paths) == 4
    assert default_output(base, spec).name.endswith("-seed0")
    assert default_output(base, spec) == default_output(RunConfig(task="hh", model="m"), spec)  # stable


def test_a_run_into_a_locked_folder_is_refused_in_process(
    tiny_family: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's error path: one line, nothing written into the folder."""
    output = tmp_path / "run"
    with LoopbackServer(judge_answer) as server, lock_folder(output, "eft-eval run"):
        assert main([*args(tiny_family, output, server.base_url), "--limit", "1"]) == 2
        assert server.request_count == 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"in use by pid {os.getpid()}" in err
    assert sorted(p.name for p in output.iterdir()) == [LOCK_FILE]
