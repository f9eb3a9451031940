"""`eft-eval serve`: an EFT model behind an OpenAI-compatible API (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import PORT_RANGE, count_arg, number_arg, port_arg, seed_arg

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    from eft_eval.models.commands import MODEL_HELP

    parser = subparsers.add_parser(
        "serve", help="serve a plain or EFT model over the OpenAI API (/v1/chat/completions, /v1/completions)",
        description="Serve MODEL (a plain model or an EFT composition) over an OpenAI-compatible HTTP API: "
        "/v1/chat/completions and /v1/completions (streaming, n, logprobs, stop), /v1/models and /health. "
        "Concurrent requests are decoded together: with --scheduling step (the default) a request joins the "
        "running batch at the next decoding step and leaves it the step it ends. /metrics serves Prometheus "
        "metrics. Any OpenAI client, lm-eval's "
        "local-chat-completions model or `eft-eval judge --base-url` can use it. Stop with Ctrl-C or SIGTERM: "
        "requests in flight finish first.",
    )
    parser.add_argument("--model", required=True, help=f"{MODEL_HELP} (required)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port_arg(), default=8000, help="TCP port to listen on (default 8000)")
    parser.add_argument("--served-name", default=None, metavar="NAME",
                        help="the model name clients send (default: --model as given)")
    parser.add_argument("--api-key-env", default=None, metavar="VAR",
                        help="require 'Authorization: Bearer KEY' where KEY is this environment variable's value "
                        "(default: no key asked)")
    parser.add_argument("--max-batch-size", type=count_arg(), default=16, metavar="N",
                        help="most rows decoded together (default 16)")
    parser.add_argument("--speculative-block", type=count_arg(0), default=0, metavar="K",
                        help="speculative EFT decoding, K drafted tokens a round (exact mode: same tokens; "
                        "default 0: off). Speculative rows are scheduled per batch (--scheduling batch)")
    parser.add_argument("--scheduling", choices=["step", "batch"], default="step",
                        help="how requests share the decoder (default step). step: continuous batching, requests "
                        "join and leave the running batch at every decoding step, whatever their settings; batch: "
                        "a batch of alike requests runs until its last row ends, requests arriving meanwhile wait "
                        "for the next one")
    parser.add_argument("--max-prefill-tokens", type=count_arg(), default=4096, metavar="N",
                        help="step scheduling: most prompt tokens prefilled before one step (rows joining x their "
                        "longest prompt), so a long prompt cannot stall every stream; one longer prompt joins "
                        "alone (default 4096)")
    parser.add_argument("--max-waiting", type=count_arg(0), default=256, metavar="N",
                        help="most rows (choices) waiting to join; more get 429 with Retry-After (default 256; "
                        "0: no limit)")
    # At most an hour, as `BatchEngine` checks: a larger value passed the flag and failed only after
    # the weights had loaded, with a line naming `BatchEngine: retry_after_s` rather than the flag.
    parser.add_argument("--retry-after-s", type=count_arg(1, 3600), default=1, metavar="S",
                        help="the Retry-After seconds of a 429 (default 1, at most 3600)")
    # At most a minute: the wait is per gap between requests, and the decoder thread's waits refuse
    # absurd timeouts with an OverflowError (the thread died while /health still said 200).
    parser.add_argument("--batch-wait-ms", type=number_arg(minimum=0, maximum=60_000), default=25.0, metavar="MS",
                        help="a new batch waits for more requests while they arrive less than this apart "
                        "(default 25, at most 60000)")
    parser.add_argument("--max-tokens-limit", type=count_arg(), default=4096, metavar="N",
                        help="largest max_tokens a request may ask (default 4096)")
    parser.add_argument("--default-max-tokens", type=count_arg(), default=256, metavar="N",
                        help="max_tokens when a request gives none (default 256)")
    parser.add_argument("--max-n", type=count_arg(), default=16, metavar="N",
                        help="most choices (n x prompts) per request (default 16)")
    parser.add_argument("--max-body-bytes", type=count_arg(), default=1 << 20, metavar="BYTES",
                        help="largest request body (default 1048576: 1 MiB)")
    parser.add_argument("--seed", type=seed_arg(), default=0, help="seed of requests that give none (default 0)")
    parser.add_argument("--dtype", choices=["auto", "bf16", "fp16", "fp32"],
                        help="override every component's dtype (default: each component's own)")
    parser.add_argument("--device", help="override every component's device: cpu, cuda, cuda:1, auto (default: "
                        "each component's own)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                        help="uvicorn's log level (default info)")
    parser.set_defaults(handler=run_serve)


def read_api_key(variable: str | None) -> str | None:
    """The key from the named environment variable; the value itself is never printed."""
    if variable is None:
        return None
    key = os.environ.get(variable, "").strip()
    if not key:
        raise EFTEvalError(f"--api-key-env {variable}: that environment variable is not set or empty")
    return key


def check_port_free(host: str, port: Any) -> None:
    """One line unless `host:port` can be listened on: the port's range, the host's name, the bind."""
    # The flag's type checks the range too; a library caller's -1 read as "cannot resolve" the host
    # and 99999 as an OverflowError from the socket.
    port = PORT_RANGE.parse(port, "--port", "serve")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise EFTEvalError(f"--host {host}: cannot resolve it ({getattr(error, 'strerror', None) or error})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as error:
            raise EFTEvalError(f"cannot listen on {host}:{port}: {error.strerror or error}"
                               f"{_bind_hint(error, host, port)}") from None


def _bind_hint(error: OSError, host: str, port: int) -> str:
    if error.errno == errno.EADDRINUSE:
        return " (another server uses it: stop it or choose another --port)"
    if error.errno == errno.EACCES:
        return (" (ports below 1024 need administrator rights: choose --port 1024 or above)" if port < 1024
                else " (this user may not listen there: choose another --port)")
    if error.errno == errno.EADDRNOTAVAIL:
        return f" (no network interface of this machine has the address {host}: check --host)"
    return ""


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from eft_eval.models import EFTModel
    from eft_eval.serve._app import ServeSettings, create_app
    from eft_eval.serve._completions import Limits
    from eft_eval.serve._engine import BatchEngine

    for flag in ("max_batch_size", "max_tokens_limit", "default_max_tokens", "max_n", "max_body_bytes",
                 "max_prefill_tokens", "retry_after_s"):
        if getattr(args, flag) < 1:
            raise EFTEvalError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    for flag in ("speculative_block", "batch_wait_ms", "max_waiting"):
        if getattr(args, flag) < 0:
            raise EFTEvalError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    api_key = read_api_key(args.api_key_env)
    check_port_free(args.host, args.port)  # before minutes of loading weights, not after
    model = EFTModel.from_spec(args.model, dtype=args.dtype, device=args.device)
    engine = BatchEngine(model, max_batch_size=args.max_batch_size, speculative_block=args.speculative_block,
                         batch_wait_s=args.batch_wait_ms / 1000, scheduling=args.scheduling,
                         max_prefill_tokens=args.max_prefill_tokens, max_waiting=args.max_waiting,
                         retry_after_s=args.retry_after_s)
    settings = ServeSettings(
        served_name=args.served_name or args.model,
        api_key=api_key,
        max_body_bytes=args.max_body_bytes,
        limits=Limits(max_tokens=args.max_tokens_limit, default_max_tokens=args.default_max_tokens,
                      max_n=args.max_n, default_seed=args.seed),
    )
    app = create_app(engine, settings)
    key_note = f", bearer key from ${args.api_key_env}" if api_key else ", no API key"
    logger.info("serving %s as %r on http://%s:%d/v1%s, %s scheduling", model.spec.to_string(),
                settings.served_name, args.host, args.port, key_note, engine.scheduling)
    # uvicorn turns SIGTERM/SIGINT into a graceful shutdown: it stops accepting connections, waits for
    # in-flight requests (streams included) to finish, then runs the lifespan exit, which drains the engine.
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=None)
    uvicorn.Server(config).run()
    return 0
