"""`human-study serve` stopped by a signal leaves nothing behind.

A real `eft-eval human-study serve` with a real Potato: SIGTERM or SIGHUP to the command (what a
service manager, `kill`, or closing the terminal sends) must end Potato too, promptly, and a
second `serve` of the same project is refused while the first holds it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from study_helpers import judged_sample, write_samples

from eft_eval.cli import main
from eft_eval.study._potato import free_port, stop_process_group

pytestmark = pytest.mark.slow  # real `human-study serve` processes and signals


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_to_serve_stops_potato(tmp_path: Path, sig: signal.Signals, capsys: pytest.CaptureFixture[str]) -> None:
    samples = write_samples(tmp_path / "samples.jsonl", [judged_sample(d, "m", score=0.0) for d in range(2)])
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "2", "--out", str(project)]) == 0
    port = free_port()
    command = [sys.executable, "-m", "eft_eval.cli", "human-study", "serve", str(project), "--port", str(port)]
    # Its own session only so that the cleanup below can reach anything left; the signal under
    # test goes to the command's pid alone, as `kill PID` would.
    log = tmp_path / "serve.log"  # a file, not a pipe nobody reads: a full pipe would block Potato's logging
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200, log.read_text()[-3000:]

        # The project is in use: a second serve stops with one line naming the holder.
        capsys.readouterr()
        assert main(["human-study", "serve", str(project), "--port", str(free_port())]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"pid {process.pid}" in err and "human-study serve" in err

        started = time.monotonic()
        os.kill(process.pid, sig)
        assert process.wait(timeout=120) == 128 + sig  # generous: the promptness bound is the next line
        assert time.monotonic() - started < 15  # promptly: SIGTERM to the group, SIGKILL after a grace period
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Nothing outlives the command: no Potato listens on the port any more.
    assert not _listening(port)


def test_stop_process_group_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    """A server that ignores SIGTERM (or is too busy to handle it) is killed after the grace period,
    together with the process it started."""
    ready = tmp_path / "ready"
    script = (
        "import signal, subprocess, sys, time, pathlib\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        f"pathlib.Path({str(ready)!r}).write_text(str(child.pid))\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 120
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(ready.read_text())
    started = time.monotonic()
    stop_process_group(process, grace=0.5)
    assert process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10
    # The grandchild was in the same group: gone too (reaped by init, or a zombie at most).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{grandchild}/stat").read_text().split(") ")[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            break
        if state == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"process {grandchild} of the group still runs")
