"""`eft-eval bench inspect`: `inspect eval` through the `eft` provider against `EFTModel.generate`, in one run.

The same prompts, greedy, `--tokens` new tokens at most, go (a) through `EFTModel.generate` at batch
size B and (b) through inspect's `eval` of a one-step task (`generate()`) on the `eft` provider with
`-M batch_size=B`: inspect sends one sample at a time, 2B in flight (`max_connections`: one
batch waits ready while one decodes), and the provider gathers them into shared batches of B.
Reported: tokens/s of both, `throughput_ratio` = inspect / generate (target >= 0.8), whether the
texts are identical, the engine's mean batch size and its decoding time within the inspect run
(the rest of the inspect run is inspect's own work per sample and the waits between batches). Timed
from the eval call to its return (inspect's task setup and its log included); models are loaded
before. Each side runs `--repeats` times, alternating; the best counts.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from eft_eval.bench._serve import bench_prompts
from eft_eval.bench.commands import (
    add_json_flag,
    add_tiny_family_arguments,
    measure_in_temp_folder,
    tiny_family,
    upscaling_spec,
)
from eft_eval.parsing import count_arg


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("inspect", help="inspect eval through the eft provider vs EFTModel.generate")
    parser.add_argument("--batch-size", type=count_arg(), default=16, help="generate's batch size and the "
                        "provider's -M batch_size (default 16)")
    parser.add_argument("--prompts", type=count_arg(), default=64)
    parser.add_argument("--tokens", type=count_arg(), default=32, help="most new tokens per prompt")
    add_tiny_family_arguments(parser, small_hidden=64, small_layers=2, large_hidden=256, large_layers=4)
    parser.add_argument("--repeats", type=count_arg(), default=2, help="best of N, alternating the two sides")
    parser.add_argument("--threads", type=count_arg(), default=1, help="torch threads (default 1)")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    return measure_in_temp_folder(measure, args)


def measure(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import get_model
    from inspect_ai.solver import generate

    from eft_eval.errors import EFTEvalError
    from eft_eval.inspect import eft  # noqa: F401 (registers the provider, as the entry point does)
    from eft_eval.models import EFTModel, split_compact

    logging.getLogger("inspect_ai").setLevel(logging.WARNING)
    batch = args.batch_size
    spec = upscaling_spec(tiny_family(folder, args))
    prompts = bench_prompts(args.prompts)
    model = EFTModel.from_spec(spec)
    model_args: dict[str, Any] = {"batch_size": batch, **split_compact(spec)}
    provider = get_model("eft/bench", memoize=False, **model_args)
    engine = provider.api.engine  # type: ignore[attr-defined]
    task = Task(dataset=MemoryDataset([Sample(input=p, id=i) for i, p in enumerate(prompts)]), solver=generate())

    def generate_run() -> tuple[float, list[str], int]:
        start = time.perf_counter()
        generations = model.generate(prompts, max_new_tokens=args.tokens, batch_size=batch)
        return time.perf_counter() - start, [g.text for g in generations], sum(len(g.token_ids) for g in generations)

    def decoding_s() -> float:
        return float(getattr(engine, "decode_seconds", 0.0))  # the engine's time in its decoder, where it counts it

    def inspect_run() -> tuple[float, list[str], int, int, float]:
        rows, batches, decoding = engine.rows, engine.batches, decoding_s()
        start = time.perf_counter()
        [log] = inspect_eval(task, model=provider, log_dir=str(folder / "logs"), display="none", temperature=0,
                             max_tokens=args.tokens, max_connections=2 * batch)
        wall = time.perf_counter() - start
        if log.status != "success" or log.samples is None:
            raise EFTEvalError(f"bench inspect: the evaluation ended {log.status}: {log.error}")
        texts = [s.output.completion for s in sorted(log.samples, key=lambda s: int(s.id))]
        return wall, texts, engine.rows - rows, engine.batches - batches, decoding_s() - decoding

    inspect_run()  # warm-up: inspect's first evaluation imports and sets up what later ones reuse
    generate_run()
    best_g: tuple[float, list[str], int] | None = None
    best_i: tuple[float, list[str], int, int, float] | None = None
    for _ in range(max(1, args.repeats)):
        run_g, run_i = generate_run(), inspect_run()
        best_g = run_g if best_g is None or run_g[0] < best_g[0] else best_g
        best_i = run_i if best_i is None or run_i[0] < best_i[0] else best_i
    assert best_g is not None and best_i is not None
    provider.api.close()
    tokens = best_g[2]  # the same on both sides when the texts are identical
    return {
        "throughput_ratio": round(best_g[0] / best_i[0], 3),
        "inspect_s": round(best_i[0], 3),
        "generate_s": round(best_g[0], 3),
        # The engine's decoding time within the inspect run: the rest is inspect's own time per
        # sample (set-up, transcript, log) and the engine's waits between batches.
        "inspect_decoding_s": round(best_i[4], 3),
        "inspect_tokens_per_s": round(tokens / best_i[0], 1),
        "generate_tokens_per_s": round(tokens / best_g[0], 1),
        "outputs_identical": best_i[1] == best_g[1],
        "inspect_mean_batch": round(best_i[2] / best_i[3], 2) if best_i[3] else None,
        "config": {"batch_size": batch, "prompts": len(prompts), "tokens": args.tokens,
                   "small": f"{args.small_hidden}x{args.small_layers}",
                   "large": f"{args.large_hidden}x{args.large_layers}", "threads": args.threads,
                   "repeats": args.repeats},
    }
