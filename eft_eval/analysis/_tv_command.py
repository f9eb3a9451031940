"""`eft-eval analyze tv`: token-level TV between the small fine-tuned model and EFT (paper Fig. 7).

Responses come from a JSON-lines file (`eft-eval generate`'s output: `query` and `response`) or are
generated here from `--prompt` / `--prompts-file` with the EFT model itself. Writes `tv.html` (the
responses with high-TV tokens highlighted) and `tv.json` (every token's TV and reweighted tokens)
to `--out`, and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eft_eval.errors import EFTEvalError
from eft_eval.models.commands import (
    MODEL_HELP,
    add_sampling_arguments,
    read_prompts,
    sampling_kwargs,
)
from eft_eval.parsing import count_arg

if TYPE_CHECKING:
    from eft_eval.analysis._token_tv import ResponseTV


TokenTVPage = Callable[[Sequence["ResponseTV"], dict[str, Any]], str]
"""The HTML page of analysed responses and their summary (the report's `token_tv_page`)."""


def register(subparsers: Any, page: TokenTVPage) -> None:
    parser = subparsers.add_parser(
        "tv", help="total variation between the small fine-tuned model and EFT along responses"
    )
    parser.add_argument("--model", required=True, help=f"an EFT spec with a delta; {MODEL_HELP}")
    parser.add_argument("--responses", type=Path,
                        help="JSON lines with `query` (or `prompt`) and `response` to analyse, "
                             "e.g. eft-eval generate's output; without it responses are generated")
    parser.add_argument("--prompt", action="append", default=[], help="a user query (repeatable)")
    parser.add_argument("--prompts-file", type=Path, help="a text file with one query per line")
    parser.add_argument("--top", type=count_arg(0), default=3, help="up-/down-weighted tokens kept per position")
    parser.add_argument("--out", type=Path, default=Path("tv_analysis"), help="folder for tv.html and tv.json")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_sampling_arguments(parser)
    parser.set_defaults(handler=partial(run_tv, page=page))


def _read_responses(path: Path) -> tuple[list[str], list[str]]:
    from eft_eval.fileio import iter_jsonl

    if not path.is_file():
        raise EFTEvalError(f"--responses {path} does not exist")
    prompts, responses = [], []
    for number, record in iter_jsonl(path):
        prompt = record.get("query", record.get("prompt"))
        if not isinstance(prompt, str) or "response" not in record:
            raise EFTEvalError(
                f"{path}:{number}: expected a JSON object with `query` (or `prompt`) and `response`"
            )
        prompts.append(prompt)
        responses.append(str(record["response"]))
    if not prompts:
        raise EFTEvalError(f"--responses {path} holds no records")
    return prompts, responses


def run_tv(args: argparse.Namespace, page: TokenTVPage) -> int:
    from eft_eval.analysis._token_tv import summarize, to_records, token_tv
    from eft_eval.models import EFTModel

    if args.top < 0:
        raise EFTEvalError(f"--top must be >= 0, got {args.top}")
    if args.responses is not None:
        prompts, texts = _read_responses(args.responses)
    else:
        prompts, texts = read_prompts(args), []
    try:
        model = EFTModel.from_spec(args.model, dtype=args.dtype, device=args.device)
        if not model.spec.deltas:
            raise EFTEvalError("analyze tv needs an EFT spec with a delta (base=...,ft=...,ref=...)")
        if texts:
            response_ids = [model.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        else:
            generations = model.generate(prompts, progress=sys.stderr.isatty(), **sampling_kwargs(args))
            response_ids = [g.token_ids for g in generations]
        analysed = token_tv(model, prompts, response_ids, top=args.top)
    except ValueError as error:
        raise EFTEvalError(str(error)) from None
    args.out.mkdir(parents=True, exist_ok=True)
    numbers = summarize(analysed)
    summary = {**numbers, "model": model.spec.to_string()}
    (args.out / "tv.html").write_text(page(analysed, numbers), encoding="utf-8")
    (args.out / "tv.json").write_text(
        json.dumps({"summary": summary, "responses": to_records(analysed)}, ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    if args.json:
        print(json.dumps(summary))
    else:
        low = next(key for key in summary if key.startswith("share_tv_below"))
        print(f"{summary['tokens']} tokens in {summary['responses']} responses: mean TV {summary['mean_tv']:.3f}, "
              f"{summary[low]:.1%} of tokens under {low.rsplit('_', 1)[1]}; wrote {args.out}/tv.html, tv.json")
    return 0
