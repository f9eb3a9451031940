"""`eft-eval generate`: sample from a plain or EFT model from the command line (JSON lines out)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import count_arg, sampling_arg, seed_arg

MODEL_HELP = (
    "a model or EFT spec: PATH_OR_HUB_ID, 'base=...,ft=...,ref=...[,beta=..,alpha=..,ft2=..]' "
    "or a spec YAML file"
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("generate", help="generate responses from a plain or EFT model")
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--prompt", action="append", default=[], help="a user query (repeatable)")
    parser.add_argument("--prompts-file", type=Path, help="a text file with one query per line")
    add_sampling_arguments(parser)
    parser.set_defaults(handler=run_generate)


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-new-tokens", type=sampling_arg("max_new_tokens"), default=256)
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=sampling_arg("temperature"), default=1.0,
                        help="sampling temperature, with --sample (0: greedy; default 1)")
    parser.add_argument("--top-p", type=sampling_arg("top_p"), default=1.0,
                        help="nucleus sampling, in (0, 1] (default 1: off)")
    parser.add_argument("--top-k", type=sampling_arg("top_k"), default=0,
                        help="keep the K most likely tokens (default 0: off)")
    parser.add_argument("--seed", type=seed_arg(), default=0)
    parser.add_argument("--stop", action="append", default=[], help="a stop string (repeatable)")
    parser.add_argument("--batch-size", type=count_arg(), default=8)
    parser.add_argument("--dtype", choices=["auto", "bf16", "fp16", "fp32"], help="override every component")
    parser.add_argument("--device", help="override every component (cpu, cuda, cuda:1, auto)")


def sampling_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_new_tokens": args.max_new_tokens, "do_sample": args.sample, "temperature": args.temperature,
        "top_p": args.top_p, "top_k": args.top_k, "seed": args.seed, "stop": args.stop,
        "batch_size": args.batch_size,
    }


def read_prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompt)
    if args.prompts_file is not None:
        from eft_eval.fileio import read_text

        # UTF-8 whatever the locale; lines end at "\n" only (a prompt may hold U+2028 and the like).
        text = read_text(args.prompts_file, "prompts file (--prompts-file)")
        prompts += [line.strip() for line in text.split("\n") if line.strip()]
    if not prompts:
        raise EFTEvalError("no prompts: give --prompt TEXT (repeatable) or --prompts-file FILE")
    return prompts


def run_generate(args: argparse.Namespace) -> int:
    from eft_eval.models._eft_model import EFTModel

    prompts = read_prompts(args)
    try:
        model = EFTModel.from_spec(args.model, dtype=args.dtype, device=args.device)
        generations = model.generate(prompts, progress=sys.stderr.isatty(), **sampling_kwargs(args))
    except ValueError as error:
        raise EFTEvalError(str(error)) from None
    for prompt, generation in zip(prompts, generations):
        record = {"query": prompt, "response": generation.text, "finish_reason": generation.finish_reason,
                  "model": model.spec.to_string()}
        print(json.dumps(record, ensure_ascii=False))
    return 0
