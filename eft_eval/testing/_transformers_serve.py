"""`transformers serve` on a local model folder, as a context manager: a real OpenAI-compatible
server (needs the `serve` extra), e.g. on a `build_chain_model` folder for a scripted local judge.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path, name: str,
                 timeout: float = 180.0) -> None:
    """Wait until `base_url/health` answers; a server that exits or does not start within `timeout`
    seconds is an error holding the end of its `log`."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start within {timeout:.0f} s: {log.read_text()[-2000:]}") from None
            time.sleep(0.25)


@contextlib.contextmanager
def transformers_serve(model_dir: Path, log_path: Path, startup_timeout: float = 180.0) -> Iterator[str]:
    """Run `transformers serve` pinned to `model_dir`; yields its base URL (…/v1)."""
    port = free_port()
    transformers_cli = Path(sys.executable).with_name("transformers")
    command = [str(transformers_cli), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
               "--device", "cpu", "--log-level", "warning"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", process, log_path, "transformers serve", startup_timeout)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


__all__ = ["free_port", "transformers_serve", "wait_healthy"]
