"""A thin wrapper over `potato start`: the command line, and a managed server for scripts and tests.

Potato runs as a child process (`python -m potato start CONFIG -p PORT --host HOST`) of the same
interpreter, so it is the installed potato-annotation, never another one on PATH. It binds to
loopback unless told otherwise: a study is opened to annotators deliberately, not by default.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from eft_eval.errors import EFTEvalError
from eft_eval.study.project import CONFIG_FILE, load_project

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def potato_command(project_dir: Path, port: int, host: str = LOOPBACK) -> list[str]:
    """The `potato start` command line for a project folder."""
    config = (project_dir / CONFIG_FILE).resolve()
    return [sys.executable, "-m", "potato", "start", str(config), "-p", str(port), "--host", host]


def _check_potato_installed() -> None:
    try:
        import potato  # noqa: F401  (only checking it is importable)
    except ImportError:
        raise EFTEvalError("potato-annotation is not installed; install it with: pip install 'eft-eval[study]'") from None


def serve(project_dir: Path, port: int = 8000, host: str = LOOPBACK) -> int:
    """Run Potato in the foreground until it exits or is interrupted; returns its exit status."""
    load_project(project_dir)  # a clear error for a folder that is not a project
    _check_potato_installed()
    command = potato_command(project_dir, port, host)
    print(f"Potato serving {project_dir} at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    process = subprocess.Popen(command, cwd=project_dir)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


class PotatoServer:
    """A Potato server for one project, started and stopped by the caller (or a `with` block)."""

    def __init__(self, project_dir: Path, *, port: int | None = None, host: str = LOOPBACK, log_file: Path | None = None) -> None:
        self.project_dir = Path(project_dir)
        self.host = host
        self.port = port
        self.log_file = log_file or self.project_dir / "potato_server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> str:
        """Start Potato and wait until it answers; returns its base URL."""
        load_project(self.project_dir)
        _check_potato_installed()
        if self.port is None:
            self.port = free_port(self.host)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            # A session of its own so stop() can end Potato and anything it started.
            self._process = subprocess.Popen(
                potato_command(self.project_dir, self.port, self.host),
                cwd=self.project_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(timeout)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EFTEvalError(f"Potato exited with status {self._process.returncode} while starting; see {self.log_file}:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise EFTEvalError(f"Potato did not answer on {self.url} within {timeout:.0f} s; see {self.log_file}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a bounded wait). Safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            process.wait()

    def __enter__(self) -> PotatoServer:  # noqa: PYI034  (Self needs Python 3.11)
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
