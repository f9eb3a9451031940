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
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from eft_eval.errors import EFTEvalError
from eft_eval.study._project import CONFIG_FILE, load_project

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 90.0
# Seconds Potato gets to exit after SIGTERM before its group is killed.
STOP_GRACE_S = 3.0
# Signals `serve` catches and turns into stopping Potato's process group.
FORWARDED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
        raise EFTEvalError("potato-annotation is not installed; install it with: pip install "
                           "'eft-eval[study]'") from None


class _StopSignal(Exception):
    """Raised in the main thread by the signal handler: the command was asked to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_process_group(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """End a child started with `start_new_session=True` and everything it started.

    SIGTERM to the whole group, then SIGKILL to the group after `grace` seconds: a server that
    ignores or is slow to handle SIGTERM (a busy machine, a stuck request) is still gone promptly.
    """
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    except ProcessLookupError:
        process.wait()
    # The leader is gone; reap any stragglers it left in its group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def serve(project_dir: Path, port: int = 8000, host: str = LOOPBACK) -> int:
    """Run Potato in the foreground until it exits or is stopped; returns its exit status.

    Potato runs in a process group of its own, so a signal to this command never reaches it
    directly and nothing outlives the command: SIGINT (Ctrl-C), SIGTERM and SIGHUP are caught here
    and end Potato's whole group (`stop_process_group`). Ctrl-C then raises KeyboardInterrupt as
    usual; SIGTERM and SIGHUP return 128 + the signal number, as a shell reports a killed command.
    """
    load_project(project_dir)  # a clear error for a folder that is not a project
    _check_potato_installed()
    from eft_eval.locking import lock_folder

    command = potato_command(project_dir, port, host)
    with lock_folder(project_dir, "human-study serve"):
        print(f"Potato serving {project_dir} at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)

        def on_signal(signum: int, frame: object) -> None:
            raise _StopSignal(signum)

        # Handlers can only be set in the main thread; elsewhere the caller owns signal handling.
        in_main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, on_signal) for sig in FORWARDED_SIGNALS} if in_main else {}
        process: subprocess.Popen[bytes] | None = None
        try:
            process = subprocess.Popen(command, cwd=project_dir, start_new_session=True)
            return process.wait()
        except (_StopSignal, KeyboardInterrupt) as stop:
            # Stop it before anything else can interrupt us again: ignore further signals meanwhile.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            if process is not None:
                stop_process_group(process)
            if isinstance(stop, KeyboardInterrupt) or stop.signum == signal.SIGINT:
                raise KeyboardInterrupt from None
            return 128 + stop.signum
        finally:
            if process is not None and process.poll() is None:  # any other exception: still no orphan
                stop_process_group(process)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class PotatoServer:
    """A Potato server for one project, started and stopped by the caller (or a `with` block)."""

    def __init__(self, project_dir: Path, *, port: int | None = None, host: str = LOOPBACK,
                 log_file: Path | None = None) -> None:
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
                raise EFTEvalError(f"Potato exited with status {self._process.returncode} while starting; see "
                                   f"{self.log_file}:\n{self._log_tail()}")
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
        if process is not None:
            stop_process_group(process)

    def __enter__(self) -> PotatoServer:  # noqa: PYI034  (Self needs Python 3.11)
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
