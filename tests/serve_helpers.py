"""Real `eft-eval serve` servers for tests: uvicorn on 127.0.0.1, in a thread or a subprocess."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.testing import free_port


def upscaled_spec(family: dict[str, Path]) -> str:
    """Up-scaling: large pre-trained base + (small fine-tuned - small pre-trained); ft renders chat,
    base and ref the plain dialogue format."""
    return f"base={family['large_base']},ft={family['small_ft']},ref={family['small_base']}"


def wait_for_health(base_url: str, timeout: float = 180.0, process: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{base_url} did not become healthy")


@dataclass
class ThreadServer:
    base_url: str
    engine: Any

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"


@contextlib.contextmanager
def serve_in_thread(model: Any, *, api_key: str | None = None, max_batch_size: int = 8, speculative_block: int = 0,
                    scheduling: str = "step", max_waiting: int = 0, max_prefill_tokens: int = 4096,
                    batch_wait_s: float = 0.025, retry_after_s: float = 1.0, **settings: Any) -> Iterator[ThreadServer]:
    """The real app under the real uvicorn, in a thread of this process (sharing `model`)."""
    import uvicorn

    from eft_eval.serve import BatchEngine, Limits, ServeSettings, create_app

    limit_keys = {"max_tokens", "default_max_tokens", "max_n", "default_seed"}
    limits = Limits(**{k: v for k, v in settings.items() if k in limit_keys})
    other = {k: v for k, v in settings.items() if k not in limit_keys}
    engine = BatchEngine(model, max_batch_size=max_batch_size, speculative_block=speculative_block,
                         batch_wait_s=batch_wait_s, scheduling=scheduling, max_waiting=max_waiting,
                         max_prefill_tokens=max_prefill_tokens, retry_after_s=retry_after_s)
    app = create_app(engine, ServeSettings(served_name="eft", api_key=api_key, limits=limits, **other))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    wait_for_health(base_url)
    try:
        yield ThreadServer(base_url, engine)
    finally:
        server.should_exit = True
        thread.join(30)
