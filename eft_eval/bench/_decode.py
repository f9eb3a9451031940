"""`eft-eval bench decode`: EFT decoding speed against the bound set by its three models' forwards.

Everything is measured in one run on tiny llama models built from configs (sizes are flags):
- `bound_tokens_per_s` = 1 / (t_base + t_ft + t_ref), each t the mean cached single-step forward
  time of that model alone at batch 1; `overhead_ratio` = bound / EFT tokens/s (target <= 1.15);
- `cost_per_token_ratio_long_vs_short`: per-token time for 512 vs 32 new tokens (target <= 1.5,
  i.e. the KV cache keeps a step's cost nearly flat as the sequence grows);
- `batch8_speedup`: EFT tokens/s at batch 8 over batch 1 (target >= 3).
EOS is disabled so that every run generates exactly the requested number of tokens.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from eft_eval.bench.commands import (
    TINY_SIZES,
    add_json_flag,
    add_tiny_family_arguments,
    measure_in_temp_folder,
    tiny_family,
    upscaling_spec,
)
from eft_eval.parsing import count_arg

PROMPTS = [
    "Why is the sky blue?", "How do I bake bread?", "What is the capital of France?",
    "Explain like I'm five: how do plants make food?", "Tell me a joke.", "Hi",
    "Write one sentence about the sea.", "What is 7 times 8?",
]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("decode", help="EFT decoding overhead, cache scaling and batching")
    add_tiny_family_arguments(parser, small_hidden=128, small_layers=2, large_hidden=512, large_layers=8)
    parser.add_argument("--tokens", type=count_arg(), default=64, help="new tokens for the overhead and batch runs")
    parser.add_argument("--long-tokens", type=count_arg(), default=512)
    parser.add_argument("--short-tokens", type=count_arg(), default=32)
    parser.add_argument("--repeats", type=count_arg(), default=3, help="best of N for every timing")
    parser.add_argument("--threads", type=count_arg(0), default=0, help="torch threads (0: torch's default)")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return measure_in_temp_folder(measure, args)


def measure(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from eft_eval.models import EFTModel, SamplingConfig, prompt_key

    model = EFTModel.from_spec(upscaling_spec(tiny_family(folder, args)))
    model.eos_token_ids = set()  # fixed lengths: every run generates exactly the tokens asked for
    encoded = model.encode(PROMPTS)

    def eft_seconds(batch: int, tokens: int) -> float:
        config = SamplingConfig(max_new_tokens=tokens)
        ids = [rows[:batch] for rows in encoded]
        keys = [prompt_key(p) for p in PROMPTS[:batch]]
        return best_of(args.repeats, lambda: model.generate_ids(ids, config, keys, batch_size=batch))

    step_times = {role: forward_step_seconds(model, role, args.tokens, args.repeats) for role in ("base", "ft", "ref")}
    bound = 1.0 / sum(step_times.values())
    eft_tokens_per_s = args.tokens / eft_seconds(1, args.tokens)
    short = eft_seconds(1, args.short_tokens) / args.short_tokens
    long = eft_seconds(1, args.long_tokens) / args.long_tokens
    batch8_tokens_per_s = 8 * args.tokens / eft_seconds(8, args.tokens)
    return {
        "eft_tokens_per_s": round(eft_tokens_per_s, 2),
        "bound_tokens_per_s": round(bound, 2),
        "overhead_ratio": round(bound / eft_tokens_per_s, 3),
        "t_base_ms": round(1000 * step_times["base"], 3),
        "t_ft_ms": round(1000 * step_times["ft"], 3),
        "t_ref_ms": round(1000 * step_times["ref"], 3),
        "large_over_small_cost": round(step_times["base"] / step_times["ft"], 2),
        "per_token_ms_short": round(1000 * short, 3),
        "per_token_ms_long": round(1000 * long, 3),
        "cost_per_token_ratio_long_vs_short": round(long / short, 3),
        "batch1_tokens_per_s": round(eft_tokens_per_s, 2),
        "batch8_tokens_per_s": round(batch8_tokens_per_s, 2),
        "batch8_speedup": round(batch8_tokens_per_s / eft_tokens_per_s, 2),
        "config": {k: getattr(args, k) for k in (*TINY_SIZES, "tokens", "short_tokens", "long_tokens", "repeats")},
    }


def forward_step_seconds(model: Any, role: str, tokens: int, repeats: int) -> float:
    """Mean time of one cached single-token forward of one component alone (batch 1)."""
    import torch

    from eft_eval.models import ComponentStream

    component = model.component_for(role)
    prompt = component.encode(PROMPTS[0])

    def run_steps() -> None:
        stream = ComponentStream(component.model, [prompt], model.pad_token_id, model.vocab_size)
        logprobs = stream.prefill()
        for _ in range(tokens):
            logprobs = stream.advance(logprobs.argmax(-1))

    def prefill_only() -> None:
        ComponentStream(component.model, [prompt], model.pad_token_id, model.vocab_size).prefill()

    with torch.inference_mode():
        total = best_of(repeats, run_steps)
        prefill = best_of(repeats, prefill_only)
    return max(total - prefill, 1e-9) / tokens


def best_of(repeats: int, work: Any) -> float:
    """Fastest of `repeats` runs (after one warm-up): the least disturbed by other processes."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)
