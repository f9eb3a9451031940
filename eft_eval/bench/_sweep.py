"""`eft-eval bench sweep`: an alpha sweep run as one sweep against the same points run one by one.

One run of the bench, in one process, on tiny llama models built from configs and the shipped
`demo` prompts, judged by a loopback OpenAI-compatible server (instant answers):

- `sweep_s`: `run_sweep` of an N-point reward-interpolation study (alpha 0, 0.1, ..., 1 for N=11):
  every model loaded once, each prompt block decoded once with one row per (prompt, alpha);
- `separate_s`: the same N points, each through `run_task` on its own, as N `eft-eval run`
  commands would (each loads its models: load time included);
- `speedup` = separate_s / sweep_s (target >= 2 on a 2-core machine), and `identical_samples`:
  every point's responses are the same text in both;
- `sweep_generation_s` (the batched generation step) and `sweep_other_s_per_run` (each run's task
  loading, lm-eval bookkeeping, judging and writing, which both arms pay alike): with tiny models
  this fixed cost is a large share, so the ratio grows with model size and response length.

Both arms judge into their own run folders (own judge caches), so neither replays the other's
answers; a warm-up run first pays the one-time imports and data set preparation for both.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import yaml

from eft_eval.bench.commands import add_json_flag, add_tiny_family_arguments, measure_in_temp_folder, tiny_family
from eft_eval.parsing import count_arg


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("sweep", help="an alpha sweep batched in one sweep vs its points as separate runs")
    parser.add_argument("--points", type=count_arg(2), default=11,
                        help="alpha values from 0 to 1 (default 11: step 0.1)")
    parser.add_argument("--prompts", type=count_arg(), default=8,
                        help="prompts per run, from the demo task (default 8)")
    parser.add_argument("--tokens", type=count_arg(), default=32, help="new tokens per response (default 32)")
    add_tiny_family_arguments(parser, small_hidden=64, large_hidden=256, large_layers=4)
    parser.add_argument("--repeats", type=count_arg(), default=2,
                        help="runs of each arm, alternating; the fastest of each counts (default 2)")
    parser.add_argument("--threads", type=count_arg(0), default=1,
                        help="torch threads (default 1: on a shared machine more threads spin on barriers; 0: "
                             "torch's default)")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import logging

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    # Quiet for the timing, then as before (the bench may run inside another program, e.g. tests).
    loggers = [logging.getLogger(name) for name in ("lm_eval", "eft_eval", "httpx", "httpx2", "openai")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        return measure_in_temp_folder(measure, args)
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def measure(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from eft_eval.judging import JudgeConfig
    from eft_eval.pipeline import run_task
    from eft_eval.sweep import SweepOptions, generate_all, load_study, prepare_points, run_config, run_sweep
    from eft_eval.testing import LoopbackServer, Reply

    family = tiny_family(folder / "models", args)
    study_file = folder / "alpha_sweep.yaml"
    step = 1.0 / (args.points - 1)
    study_file.write_text(yaml.safe_dump({
        "study": "bench_alpha_sweep",
        "run": {"task": "demo", "judges": ["harm"], "limit": args.prompts, "max_new_tokens": args.tokens,
                "batch_size": args.prompts, "gen_kwargs": "do_sample=true,temperature=1.0"},
        "grid": {"alpha": {"from": 0, "to": 1, "step": step}},
        "model": {"base": str(family["large_base"]), "ft": str(family["small_ft"]), "ft2": str(family["large_ft"]),
                  "ref": str(family["small_base"]), "alpha": "{alpha}"},
        "analysis": {"kind": "frontier", "x": "harm", "y": "harm"},
    }))
    study = load_study(study_file)
    with LoopbackServer(lambda body: Reply("Reason: fine.\nScore: 3")) as server:
        judge = JudgeConfig(base_url=server.base_url, progress=False)

        def options(name: str) -> SweepOptions:
            return SweepOptions(output=folder / name, judge=judge, progress=False, analyze=False)

        # Warm-up: imports, the task's data set, tokenizers: one-time costs neither arm should pay.
        run_task(run_config(study.points[0], options("warmup")))
        sweeps, generations, separates = [], [], []
        # Alternating arms, each into fresh folders; the fastest of each is the least disturbed by
        # other processes on a shared machine.
        for repeat in range(args.repeats):
            start = time.perf_counter()
            # The generation step alone first (as `run_sweep` starts it), then the whole sweep: its
            # runs find their generations stored, so the rest is per-run judging and writing.
            generate_all(prepare_points(study.points, options(f"sweep{repeat}")), say=lambda line: None,
                         progress=False)
            generated = time.perf_counter()
            run_sweep(study, options(f"sweep{repeat}"), say=lambda line: None)
            sweeps.append(time.perf_counter() - start)
            generations.append(generated - start)
            start = time.perf_counter()
            for point in study.points:
                run_task(run_config(point, options(f"separate{repeat}")))
            separates.append(time.perf_counter() - start)
    sweep_s, separate_s = min(sweeps), min(separates)
    generation_s = generations[sweeps.index(sweep_s)]
    identical = all(_responses(folder / f"{arm}{r}", p.label) == _responses(folder / "separate0", p.label)
                    for p in study.points for arm in ("sweep", "separate") for r in range(args.repeats))
    distinct = len({json.dumps(_responses(folder / "sweep0", p.label)) for p in study.points})
    return {
        "points": len(study.points),
        "prompts": args.prompts,
        "new_tokens": args.tokens,
        "sweep_s": round(sweep_s, 2),
        "separate_s": round(separate_s, 2),
        "speedup": round(separate_s / sweep_s, 2),
        "sweep_generation_s": round(generation_s, 2),
        "sweep_other_s_per_run": round((sweep_s - generation_s) / len(study.points), 2),
        "identical_samples": identical,
        "distinct_response_sets": distinct,
        "sweep_s_all": [round(s, 2) for s in sweeps],
        "separate_s_all": [round(s, 2) for s in separates],
        "config": {k: getattr(args, k) for k in ("small_hidden", "large_hidden", "large_layers", "repeats", "threads")},
    }


def _responses(root: Path, label: str) -> list[str]:
    from eft_eval.fileio import iter_jsonl
    from eft_eval.runfolder import SweepFolder

    # Not str.splitlines: generated text may hold U+2028 and other line separators JSON leaves raw.
    return [row["response"] for _, row in iter_jsonl(SweepFolder(root).run(label).samples)]
