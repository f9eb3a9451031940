"""`eft-eval bench judge`: the judge engine's throughput against a loopback server.

One run judges the same `--n` responses three times against an OpenAI-compatible server on
127.0.0.1 that answers every request after a fixed latency (standing in for a judge API):
one request at a time, `--concurrency` at a time, and again with the cache of the second run.
The ratios come from one run on one machine, so they compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from eft_eval.bench.commands import add_json_flag, print_result
from eft_eval.errors import EFTEvalError
from eft_eval.parsing import count_arg, number_arg


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "judge", help="judge engine: sequential vs concurrent vs cached re-run against a loopback server"
    )
    add_json_flag(parser)
    parser.add_argument("--n", type=count_arg(), default=256, help="judgments per run (default 256)")
    parser.add_argument("--latency", type=number_arg(minimum=0, maximum=60), default=0.3,
                        help="server latency per request, seconds (default 0.3, at most 60)")
    parser.add_argument("--concurrency", type=count_arg(), default=16, help="requests in flight in the concurrent run")
    parser.add_argument("--scaling-n", type=count_arg(0), default=3000,
                        help="judgments per run of the scaling table: 0 and 50 ms latency x 16, 64, 256 in flight, "
                        "judgments/s and client CPU ms per judgment (default 3000; 0 skips it)")
    parser.add_argument("--scaling-repeats", type=count_arg(), default=3,
                        help="runs per point of the scaling table, interleaved; rows give the median (default 3)")
    parser.set_defaults(handler=run_judge_bench)


def run_judge_bench(args: argparse.Namespace) -> int:
    if args.n < 1 or args.concurrency < 1 or args.latency < 0 or args.scaling_repeats < 1:
        raise EFTEvalError("--n, --concurrency and --scaling-repeats must be at least 1 and --latency not negative")
    from eft_eval.judging.commands import quiet_http_logs

    quiet_http_logs(args)
    report = measure(args.n, args.latency, args.concurrency)
    if args.scaling_n > 0:
        from eft_eval.bench._judge_scaling import measure_scaling

        report.update(measure_scaling(args.scaling_n, repeats=args.scaling_repeats))
    print_result(report, args.json)
    return 0


def measure(n: int, latency: float, concurrency: int) -> dict[str, Any]:
    """Times of the three runs, the requests the cached re-run made, and the peak in flight."""
    from eft_eval.judging import JudgeConfig, JudgeItem, judge_items, load_judges
    from eft_eval.testing import LoopbackServer, Reply

    judges = load_judges(["factuality"])
    items = [JudgeItem(query=f"Question {i}?", response=f"Answer number {i}.") for i in range(n)]
    answer = Reply(text="Reason: The response states nothing false.\nScore: 0")

    def timed(config: JudgeConfig) -> tuple[float, list[dict[str, Any]]]:
        start = time.perf_counter()
        results = asyncio.run(judge_items(items, judges, config))
        return time.perf_counter() - start, results

    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(lambda body: answer, latency=latency) as server:
        def config(limit: int, cache: str) -> JudgeConfig:
            return JudgeConfig(base_url=server.base_url, api_key="bench", concurrency=limit,
                               cache_path=Path(tmp) / cache, progress=False)

        # Warm-up, untimed: the first run pays for importing openai and building its types.
        asyncio.run(judge_items(items[:2], judges, config(2, "warmup.sqlite")))
        server.reset_counts()
        sequential_s, _ = timed(config(1, "sequential.sqlite"))
        server.reset_counts()
        concurrent_s, results = timed(config(concurrency, "concurrent.sqlite"))
        peak = server.peak_in_flight
        server.reset_counts()
        cached_s, cached = timed(config(concurrency, "concurrent.sqlite"))
        cached_requests = server.request_count

    scored = sum(r["factuality"]["status"] == "scored" for r in results)
    return {
        "n": n,
        "latency_s": latency,
        "concurrency": concurrency,
        "sequential_s": round(sequential_s, 3),
        "concurrent_s": round(concurrent_s, 3),
        "speedup": round(sequential_s / concurrent_s, 2),
        "peak_in_flight": peak,
        "cached_rerun_requests": cached_requests,
        "cached_rerun_s": round(cached_s, 3),
        "scored": scored,
        "cached_rerun_identical": cached == results,
    }
