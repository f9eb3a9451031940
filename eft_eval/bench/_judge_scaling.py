"""How the judge client scales with concurrency: judgments/s and client CPU ms per judgment.

Part of `eft-eval bench judge`. For each server latency (0 and 50 ms) and each concurrency
(16, 64, 256) the full judge engine (cache, parsing, retries) judges `n` distinct responses
against `_fast_server` running in a *separate process*, so that this process's CPU time
(`getrusage`, all threads) is the client's alone. The ideal throughput at latency L and
concurrency C is C / L; a client whose CPU per judgment grows with C falls short of it and
can even get slower as C grows, which is what this measures.

Steady state: each timed run reuses the backend of an untimed warm-up of 2 x C judgments, so its
C connections are open (a run opens them once; a 3,000-judgment sample should not be charged for
256 TCP handshakes). Every point runs `repeats` times, the concurrencies interleaved so that a
busy moment on the machine does not land on one of them; rows give the median and every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import resource
import statistics
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
                    concurrencies: Sequence[int] = CONCURRENCIES, repeats: int = 3) -> dict[str, Any]:
    """One row per (latency, concurrency), and the verdicts: throughput does not fall as concurrency grows,
    and the client CPU per judgment at the top concurrency."""
    from eft_eval.judging import load_judges

    judges = load_judges(["factuality"])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for latency in latencies:
            runs: dict[int, list[tuple[float, float, int]]] = {c: [] for c in concurrencies}
            with fast_server(latency) as base_url:
                for repeat in range(repeats):
                    for concurrency in concurrencies:
                        folder = Path(tmp) / f"{latency}-{concurrency}-{repeat}"
                        runs[concurrency].append(asyncio.run(_timed_run(base_url, judges, n, concurrency, folder)))
            for concurrency, measured in runs.items():
                rates = [n / wall for wall, _, _ in measured]
                rows.append({
                    "latency_ms": round(latency * 1000),
                    "concurrency": concurrency,
                    "judgments_per_s": round(statistics.median(rates), 1),
                    "judgments_per_s_runs": [round(rate, 1) for rate in rates],
                    "ideal_per_s": round(concurrency / latency) if latency else None,
                    "client_cpu_ms_per_judgment": round(statistics.median(cpu / n * 1000 for _, cpu, _ in measured), 3),
                    "scored": min(scored for _, _, scored in measured),
                })
    return {"scaling_n": n, "scaling_repeats": repeats, "scaling": rows, **_verdicts(rows)}


async def _timed_run(base_url: str, judges: Sequence[Any], n: int, concurrency: int,
                     folder: Path) -> tuple[float, float, int]:
    """(wall seconds, client CPU seconds, judgments scored) of `n` distinct judgments, connections warm."""
    from eft_eval.judging import JudgeConfig, JudgeItem, OpenAIBackend, judge_items

    config = JudgeConfig(base_url=base_url, api_key="bench", concurrency=concurrency,
                         cache_path=folder / "cache.sqlite", progress=False)
    # Distinct responses: every judgment is a request, none a cache hit (the warm-up's are others).
    items = [JudgeItem(query=f"Question {i}?", response=f"Answer {folder.name} {i}.")
             for i in range(n + 2 * concurrency)]
    backend = OpenAIBackend(config)
    try:
        await judge_items(items[n:], judges, config, backend=backend)  # opens the C connections
        cpu, start = _cpu_seconds(), time.perf_counter()
        results = await judge_items(items[:n], judges, config, backend=backend)
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    finally:
        await backend.aclose()
    return wall, cpu, sum(r["factuality"]["status"] == "scored" for r in results)


def _verdicts(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Throughput non-decreasing in concurrency (per latency); CPU per judgment at the top concurrency.

    Where the client, not the server, sets the pace (0 ms latency) throughput can at best stay flat
    as concurrency grows, and the medians of a flat line fall either way by chance. So a step
    counts as a fall only when it is one beyond the run-to-run noise: the median at the higher
    concurrency below every run at the lower one. `median_throughput_non_decreasing` compares
    the medians alone, for the record.
    """
    non_decreasing, medians = {}, {}
    for latency in sorted({row["latency_ms"] for row in rows}):
        same = [row for row in rows if row["latency_ms"] == latency]
        steps = list(itertools.pairwise(same))
        non_decreasing[f"{latency}ms"] = not any(b["judgments_per_s"] < min(a["judgments_per_s_runs"])
                                                 for a, b in steps)
        medians[f"{latency}ms"] = all(b["judgments_per_s"] >= a["judgments_per_s"] for a, b in steps)
    top = max(row["concurrency"] for row in rows)
    cpu_at_top = max(row["client_cpu_ms_per_judgment"] for row in rows if row["concurrency"] == top)
    return {"throughput_non_decreasing": non_decreasing, "median_throughput_non_decreasing": medians,
            f"max_client_cpu_ms_at_{top}": cpu_at_top}
