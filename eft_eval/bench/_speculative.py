"""`eft-eval bench speculative`: the paper's Table 2 (speculative EFT decoding speed) on this machine.

One run measures tokens/s of plain EFT up-scaling, of speculative EFT at several block sizes in both
modes (`exact`: identical samples; `rejection`: identical distribution), and of the large base and
the small fine-tuned model alone, on a tiny family built so that speculation can pay off (see
`speculative_family.py`): the large base costs several times the small models per token and the
small fine-tuned model agrees with the EFT model on most tokens.

Each configuration is timed `--repeats` times, taking turns with the others, and the fastest run
is kept, since other processes on a shared machine only ever make a run slower. By default the
clock is this process's CPU time: with one thread it equals the elapsed time on an idle machine
and, unlike it, does not count time the scheduler gave to other processes.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from typing import Any

from eft_eval.bench._speculative_family import FamilyShape
from eft_eval.bench.commands import add_json_flag
from eft_eval.errors import EFTEvalError
from eft_eval.parsing import count_arg, number_arg, sampling_arg, seed_arg
from eft_eval.stats import format_table

PROMPTS = (
    "Why is the sky blue?",
    "How do I bake bread?",
    "What is the capital of France?",
    "Explain like I'm five: how do plants make food?",
    "Tell me about the quick brown fox.",
    "Why do we need sleep?",
    "How does a refrigerator keep food cold?",
    "What should I cook for dinner tonight?",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "speculative", help="speculative EFT decoding vs plain EFT, base alone and draft alone (tokens/s)"
    )
    add_json_flag(parser)
    parser.add_argument("--blocks", default="2,4,8,16", help="comma-separated block sizes (default 2,4,8,16)")
    parser.add_argument("--prompts", type=count_arg(1, len(PROMPTS)), default=4,
                        help=f"number of prompts (1-{len(PROMPTS)})")
    parser.add_argument("--max-new-tokens", type=sampling_arg("max_new_tokens"), default=64)
    parser.add_argument("--batch-size", type=count_arg(), default=1, help="prompts decoded together (default 1)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    parser.add_argument("--temperature", type=sampling_arg("temperature"), default=0.7)
    parser.add_argument("--top-p", type=sampling_arg("top_p"), default=0.9)
    parser.add_argument("--seed", type=seed_arg(), default=0)
    parser.add_argument("--repeats", type=count_arg(), default=3,
                        help="timed runs per configuration; the fastest counts")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this process's CPU time (steady on a shared machine; default), wall: elapsed")
    parser.add_argument("--threads", type=count_arg(), default=1, help="torch threads (default 1: steadier timings)")
    parser.add_argument("--extra-layers", type=count_arg(0), default=FamilyShape.extra_layers,
                        help="layers the large base adds to the small reference's (sets its cost)")
    parser.add_argument("--base-noise", type=number_arg(minimum=0), default=FamilyShape.base_noise,
                        help="how far the large base strays from the small reference (sets agreement)")
    parser.set_defaults(handler=run_speculative_bench)


def _parse_blocks(text: str) -> list[int]:
    try:
        blocks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EFTEvalError(f"--blocks must be comma-separated integers, got {text!r}") from None
    if not blocks or min(blocks) < 1:
        raise EFTEvalError(f"--blocks needs block sizes >= 1, got {text!r}")
    return blocks


def run_speculative_bench(args: argparse.Namespace) -> int:
    blocks = _parse_blocks(args.blocks)
    import torch

    threads = torch.get_num_threads()
    try:
        result = measure(
            blocks=blocks, prompts=list(PROMPTS[: args.prompts]), max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size, greedy=args.greedy, temperature=args.temperature, top_p=args.top_p,
            seed=args.seed, repeats=args.repeats, threads=args.threads, extra_layers=args.extra_layers,
            base_noise=args.base_noise, cpu_clock=args.clock == "cpu",
        )
    finally:  # `measure` sets the process-wide thread count; callers in the same process get theirs back
        torch.set_num_threads(threads)
    print(json.dumps(result, indent=2) if args.json else result_text(result))
    return 0


def measure(
    *, blocks: list[int], prompts: list[str], max_new_tokens: int, batch_size: int, greedy: bool,
    temperature: float, top_p: float, seed: int, repeats: int, threads: int, extra_layers: int,
    base_noise: float, cpu_clock: bool = True,
) -> dict[str, Any]:
    """Run every configuration and return the JSON-ready results."""
    import torch

    from eft_eval.bench._speculative_family import build_family, family_eft_model
    from eft_eval.models import SamplingConfig
    from eft_eval.testing import tiny_tokenizer

    torch.set_num_threads(threads)
    tokenizer = tiny_tokenizer()
    shape = FamilyShape(extra_layers=extra_layers, base_noise=base_noise, seed=seed)
    family = build_family(tokenizer, shape)
    config = SamplingConfig(max_new_tokens=max_new_tokens, do_sample=not greedy, temperature=temperature,
                            top_p=top_p, seed=seed)
    keys = [f"bench-{i}" for i in range(len(prompts))]
    eft = family_eft_model(family, tokenizer)

    from eft_eval.models import SpeculativeStats

    clock = time.process_time if cpu_clock else time.perf_counter
    jobs: dict[str, tuple[Any, dict[str, Any]]] = {
        "plain": (eft, {}),
        "base": (family_eft_model({"base": family["base"]}, tokenizer), {}),
        "ft": (family_eft_model({"ft": family["ft"]}, tokenizer), {}),
    }
    for mode in ("exact", "rejection"):
        for block in blocks:
            jobs[f"{mode}-{block}"] = (eft, {"speculative_block": block, "speculative_mode": mode})
    encoded = {name: model.encode(prompts) for name, (model, _) in jobs.items()}
    fastest: dict[str, tuple[float, SpeculativeStats, list[list[int]]]] = {}
    for name, (model, speculative) in jobs.items():  # warm-up: first calls pay one-off costs
        model.generate_ids([ids[:1] for ids in encoded[name]], config, keys[:1], **speculative)
    # Configurations take turns, so a burst of load from other processes hits them all alike.
    for _ in range(repeats):
        for name, (model, speculative) in jobs.items():
            stats = SpeculativeStats()
            start = clock()
            generations = model.generate_ids(encoded[name], config, keys, batch_size=batch_size,
                                             speculative_stats=stats if speculative else None, **speculative)
            elapsed = clock() - start
            if name not in fastest or elapsed < fastest[name][0]:
                fastest[name] = (elapsed, stats, [g.token_ids for g in generations])

    def tokens_per_s(name: str) -> float:
        elapsed, _, outputs = fastest[name]
        # EOS ends a response without being kept but was generated all the same.
        return (sum(len(o) for o in outputs) + sum(len(o) < max_new_tokens for o in outputs)) / elapsed

    plain_tps, base_tps, ft_tps = tokens_per_s("plain"), tokens_per_s("base"), tokens_per_s("ft")
    rows = []
    agreed = verified = 0
    for mode in ("exact", "rejection"):
        for block in blocks:
            _, stats, outputs = fastest[f"{mode}-{block}"]
            tps = tokens_per_s(f"{mode}-{block}")
            rows.append({
                "mode": mode, "block": block, "tokens_per_s": round(tps, 2), "speedup": round(tps / plain_tps, 3),
                "acceptance_rate": round(stats.acceptance_rate, 4),
                "mean_accepted_per_block": round(stats.mean_accepted_per_block, 3),
                "mean_tokens_per_block": round(stats.mean_tokens_per_block, 3),
                "identical_to_plain": outputs == fastest["plain"][2],
            })
            if mode == "exact":  # draft token vs EFT token at every verified position
                agreed, verified = agreed + stats.accepted, verified + stats.verified

    def best(mode: str) -> dict[str, Any]:
        return max((r for r in rows if r["mode"] == mode), key=lambda r: r["speedup"])

    return {
        "device": "cpu", "clock": "process CPU time" if cpu_clock else "wall", "threads": threads,
        "prompts": len(prompts), "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "decoding": "greedy" if greedy else f"sampled (temperature {temperature}, top_p {top_p})",
        "family": asdict(shape),
        "parameters": {role: sum(p.numel() for p in m.parameters()) for role, m in family.items()},
        "plain_tokens_per_s": round(plain_tps, 2),
        "base_alone_tokens_per_s": round(base_tps, 2),
        "ft_alone_tokens_per_s": round(ft_tps, 2),
        "base_cost_ratio": round(ft_tps / base_tps, 2),
        "agreement": round(agreed / verified, 4) if verified else 0.0,
        "best_speedup": best("exact")["speedup"], "best_block": best("exact")["block"],
        "best_speedup_rejection": best("rejection")["speedup"], "best_block_rejection": best("rejection")["block"],
        "rows": rows,
    }


def result_text(result: dict[str, Any]) -> str:
    """The result as the printed table (the JSON holds the same numbers)."""
    lines = [
        (f"speculative EFT decoding, {result['decoding']}, {result['prompts']} prompts x "
         f"{result['max_new_tokens']} tokens, batch {result['batch_size']}, {result['threads']} thread(s), "
         f"clock: {result['clock']}"),
        (f"large base costs {result['base_cost_ratio']}x the small fine-tuned model per token; "
         f"draft/EFT agreement {result['agreement']:.1%}"),
    ]
    rows: list[list[str]] = [
        ["plain EFT", f"{result['plain_tokens_per_s']:.1f}", "1.00"],
        ["large base alone", f"{result['base_alone_tokens_per_s']:.1f}"],
        ["small fine-tuned alone", f"{result['ft_alone_tokens_per_s']:.1f}"],
    ]
    rows += [[f"speculative {row['mode']} k={row['block']}", f"{row['tokens_per_s']:.1f}", f"{row['speedup']:.2f}",
              f"{row['acceptance_rate']:.1%}", f"{row['mean_accepted_per_block']:.2f}",
              f"{row['mean_tokens_per_block']:.2f}"] for row in result["rows"]]
    header = ("configuration", "tokens/s", "speedup", "accept", "kept/block", "tok/block")
    lines += ["", format_table(header, [r + [""] * (len(header) - len(r)) for r in rows], right=range(1, 6))]
    lines += ["", (f"best speedup: exact {result['best_speedup']}x (k={result['best_block']}), "
                   f"rejection {result['best_speedup_rejection']}x (k={result['best_block_rejection']})")]
    return "\n".join(lines)
