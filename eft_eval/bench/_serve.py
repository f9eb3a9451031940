"""`eft-eval bench serve`: the server's throughput and latency against `EFTModel.generate`, in one run.

`--workload poisson` (the default) is an open stream of requests of varied lengths against both
schedulings (`_serve_stream.py`). `--workload closed`: the same prompts go (a) through
`EFTModel.generate` in this process at batch size B and (b) from `--clients` concurrent `openai`
clients (each sends its next request when the last one answers) to a real `eft-eval serve
--max-batch-size B` subprocess. Greedy, EOS ignored, so both generate exactly `--tokens` tokens
per prompt and must give the same texts. Reported: tokens/s of both, `throughput_ratio` = server /
generate (target >= 0.8), per-request latency p50/p95 of both (for `generate`, a prompt's latency
is when its batch is done), whether the texts are identical, the server's mean batch size and
the share of the clients' time it spent decoding.
Each side is timed `--repeats` times, alternating, and the best run counts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any

from eft_eval.bench._serve_stream import bench_prompts, measure_stream, percentile, serve_subprocess
from eft_eval.bench.commands import (
    add_json_flag,
    add_tiny_family_arguments,
    measure_in_temp_folder,
    tiny_family,
    upscaling_spec,
)
from eft_eval.parsing import count_arg, number_arg, seed_arg


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="eft-eval serve under concurrent clients vs EFTModel.generate")
    parser.add_argument("--workload", choices=["poisson", "closed"], default="poisson",
                        help="poisson (default): requests arrive at Poisson times with prompt and answer lengths "
                        "varying 10x, sent to a --scheduling batch and a --scheduling step server in turn; closed: "
                        "--clients closed-loop clients with prompts of one length and --tokens each")
    parser.add_argument("--clients", type=count_arg(), default=16, help="concurrent clients (default 16)")
    parser.add_argument("--batch-size", type=count_arg(0), default=0, help="generate's batch size and the server's "
                        "--max-batch-size (default 0: --clients)")
    parser.add_argument("--prompts", type=count_arg(), default=64)
    parser.add_argument("--tokens", type=count_arg(), default=32, help="new tokens per prompt")
    add_tiny_family_arguments(parser, small_hidden=64, small_layers=2, large_hidden=256, large_layers=4)
    parser.add_argument("--repeats", type=count_arg(), default=2, help="best of N, alternating the two sides")
    parser.add_argument("--threads", type=count_arg(), default=1, help="torch threads, the same on both sides")
    parser.add_argument("--load", type=number_arg(minimum=0.01, maximum=1000), default=4.0,
                        help="poisson: arrival rate as a multiple of the request rate generate sustains: above 1 the "
                        "servers are saturated and their throughput is their capacity (default 4)")
    parser.add_argument("--seed", type=seed_arg(), default=0, help="poisson: lengths and arrival times (default 0)")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per request otherwise
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.workload == "poisson":
        return measure_in_temp_folder(measure_stream, args)
    return measure_in_temp_folder(measure, args)


def measure(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from eft_eval.models import EFTModel

    batch = args.batch_size or args.clients
    spec = upscaling_spec(tiny_family(folder, args))
    prompts = bench_prompts(args.prompts)
    model = EFTModel.from_spec(spec)
    model.eos_token_ids = set()  # as the requests' ignore_eos: exactly --tokens tokens per prompt

    def generate_run() -> tuple[float, list[float], list[str]]:
        start = time.perf_counter()
        done: list[float] = [0.0] * len(prompts)
        texts: list[str] = [""] * len(prompts)
        # generate() batches longest-first; timing each batch gives each prompt's latency.
        order = sorted(range(len(prompts)), key=lambda i: -len(model.component_for("ft").encode(prompts[i])))
        for first in range(0, len(order), batch):
            chunk = order[first:first + batch]
            generations = model.generate([prompts[i] for i in chunk], max_new_tokens=args.tokens, batch_size=batch)
            for i, generation in zip(chunk, generations):
                done[i], texts[i] = time.perf_counter() - start, generation.text
        return time.perf_counter() - start, done, texts

    log = folder / "serve.log"
    with serve_subprocess(log, spec, args.threads, "--max-batch-size", str(batch), "--max-n", str(batch)) as root:
        base_url = f"{root}/v1"
        warm = asyncio.run(_client_run(base_url, prompts[: args.clients], args.clients, args.tokens))
        serve_walls = [warm[0]]
        generate_run()  # warm-up
        generate_best: tuple[float, list[float], list[str]] | None = None
        serve_best: tuple[float, list[float], list[str]] | None = None
        for _ in range(max(1, args.repeats)):
            run_g = generate_run()
            run_s = asyncio.run(_client_run(base_url, prompts, args.clients, args.tokens))
            serve_walls.append(run_s[0])
            generate_best = run_g if generate_best is None or run_g[0] < generate_best[0] else generate_best
            serve_best = run_s if serve_best is None or run_s[0] < serve_best[0] else serve_best
    batching = re.search(r"mean batch ([0-9.]+), largest \d+, ([0-9.]+) s decoding", log.read_text())
    assert generate_best is not None and serve_best is not None
    total_tokens = len(prompts) * args.tokens
    generate_tps, serve_tps = total_tokens / generate_best[0], total_tokens / serve_best[0]
    return {
        "throughput_ratio": round(serve_tps / generate_tps, 3),
        "serve_tokens_per_s": round(serve_tps, 1),
        "generate_tokens_per_s": round(generate_tps, 1),
        "serve_latency_p50_s": round(percentile(serve_best[1], 50), 3),
        "serve_latency_p95_s": round(percentile(serve_best[1], 95), 3),
        "generate_latency_p50_s": round(percentile(generate_best[1], 50), 3),
        "generate_latency_p95_s": round(percentile(generate_best[1], 95), 3),
        "outputs_identical": serve_best[2] == generate_best[2],
        "serve_mean_batch": float(batching.group(1)) if batching else None,
        # The share of the clients' wall time the server spent decoding (the rest: HTTP, queueing).
        "serve_decoding_share": round(float(batching.group(2)) / sum(serve_walls), 3) if batching else None,
        "config": {"clients": args.clients, "batch_size": batch, "prompts": len(prompts), "tokens": args.tokens,
                   "small": f"{args.small_hidden}x{args.small_layers}",
                   "large": f"{args.large_hidden}x{args.large_layers}", "threads": args.threads,
                   "repeats": args.repeats},
    }


async def _client_run(base_url: str, prompts: list[str],
                      clients: int, tokens: int) -> tuple[float, list[float], list[str]]:
    """`clients` closed-loop clients share the prompts; returns (wall time, latency per prompt, texts)."""
    import openai

    latencies: list[float] = [0.0] * len(prompts)
    texts: list[str] = [""] * len(prompts)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(prompts)):
        queue.put_nowait(index)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600) as client:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                sent = time.perf_counter()
                response = await client.chat.completions.create(
                    model="eft", messages=[{"role": "user", "content": prompts[index]}], max_tokens=tokens,
                    temperature=0, extra_body={"ignore_eos": True},
                )
                latencies[index] = time.perf_counter() - sent
                texts[index] = response.choices[0].message.content or ""

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - start, latencies, texts
