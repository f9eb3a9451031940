"""How the judge client scales with concurrency: judgments/s and client CPU ms per judgment.

Part of `eft-eval bench judge`. For each server latency (0 and 50 ms) and each concurrency
(16, 64, 256) the full judge engine (cache, parsing, retries) judges `n` distinct responses
against `_fast_server` running in a *separate process*, so that this process's CPU time
(`getrusage`, all threads) is the client's alone. The ideal throughput at latency L and
concurrency C is C / L; a client whose CPU per judgment grows with C falls short of it and
can even get slower as C grows, which is what this measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

LATENCIES_S = (0.0, 0.05)
CONCURRENCIES = (16, 64, 256)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def fast_server(latency: float) -> Iterator[str]:
    """Base URL of a `_fast_server` process answering after `latency` seconds."""
    process = subprocess.Popen(
        [sys.executable, "-m", "eft_eval.bench._fast_server", "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the bench server did not start (said {line!r})")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure_scaling(n: int, latencies: Sequence[float] = LATENCIES_S,
                    concurrencies: Sequence[int] = CONCURRENCIES) -> dict[str, Any]:
    """One row per (latency, concurrency) and whether the targets of issue 18 hold."""
    from eft_eval.judging import JudgeConfig, JudgeItem, judge_items, load_judges

    judges = load_judges(["factuality"])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for latency in latencies:
            with fast_server(latency) as base_url:
                for concurrency in concurrencies:
                    def config(cache: str, limit: int = concurrency) -> JudgeConfig:
                        return JudgeConfig(base_url=base_url, api_key="bench", concurrency=limit,
                                           cache_path=Path(tmp) / cache, progress=False)

                    # Distinct responses per run: every judgment is a request, none a cache hit.
                    tag = f"{latency}-{concurrency}"
                    items = [JudgeItem(query=f"Question {i}?", response=f"Answer {tag} {i}.") for i in range(n)]
                    asyncio.run(judge_items(items[:32], judges, config(f"warm-{tag}.sqlite")))  # connections, imports
                    cpu, start = _cpu_seconds(), time.perf_counter()
                    results = asyncio.run(judge_items(items, judges, config(f"run-{tag}.sqlite")))
                    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
                    rows.append({
                        "latency_ms": round(latency * 1000),
                        "concurrency": concurrency,
                        "judgments_per_s": round(n / wall, 1),
                        "ideal_per_s": round(concurrency / latency) if latency else None,
                        "client_cpu_ms_per_judgment": round(cpu / n * 1000, 3),
                        "scored": sum(r["factuality"]["status"] == "scored" for r in results),
                    })
    return {"scaling_n": n, "scaling": rows, **_verdicts(rows)}


def _verdicts(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Throughput non-decreasing in concurrency (per latency); CPU per judgment at the top concurrency."""
    non_decreasing = {}
    for latency in sorted({row["latency_ms"] for row in rows}):
        rates = [row["judgments_per_s"] for row in rows if row["latency_ms"] == latency]
        non_decreasing[f"{latency}ms"] = all(b >= a for a, b in itertools.pairwise(rates))
    top = max(row["concurrency"] for row in rows)
    cpu_at_top = max(row["client_cpu_ms_per_judgment"] for row in rows if row["concurrency"] == top)
    return {"throughput_non_decreasing": non_decreasing, f"max_client_cpu_ms_at_{top}": cpu_at_top}
