"""Test doubles for code that uses eft-eval: tiny models and real servers on 127.0.0.1, no downloads.

    tiny_tokenizer, tiny_llama, save_model, save_tiny_family
        tiny random llama models built from configs in-process, sharing one small BPE tokenizer;
        `save_tiny_family(folder)` writes the four EFT roles (small/large, pre-trained/fine-tuned)
    build_chain_model, save_as_gguf
        a tiny model that answers every chat prompt with one fixed text: a scripted local judge
    LoopbackServer (Reply, Hang, Drop, ScriptByMarker)
        an OpenAI-compatible chat-completions server whose script decides each answer or fault
        (429 + Retry-After, 5xx, hangs, dropped connections); counts requests and peak concurrency
    PairwiseJudge
        a pairwise judge answering from a known rule (true preference, first-position bias, length)
    BatchAPIFake
        OpenAI's Batch API (files, batches, polling, expiry, per-line errors) and chat completions
    transformers_serve, free_port, wait_healthy
        the real `transformers serve` on a local model folder (needs the `serve` extra); waiting
        for a server subprocess to answer `/health`

    with LoopbackServer(lambda body: Reply("Reason: fine.\\nScore: 2")) as server:
        ...  # an OpenAI client, or `eft-eval judge --base-url`, pointed at server.base_url

`eft-eval bench` uses them too. Names are imported lazily, so importing this package loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "BatchAPIFake": "_batch_api",
    "build_chain_model": "_chain_model",
    "save_as_gguf": "_chain_model",
    "Drop": "_loopback",
    "Hang": "_loopback",
    "PairwiseJudge": "_pairwise_judge",
    "LoopbackServer": "_loopback",
    "Reply": "_loopback",
    "ScriptByMarker": "_loopback",
    "save_model": "_tiny",
    "save_tiny_family": "_tiny",
    "tiny_llama": "_tiny",
    "tiny_tokenizer": "_tiny",
    "free_port": "_transformers_serve",
    "transformers_serve": "_transformers_serve",
    "wait_healthy": "_transformers_serve",
}

__all__ = [
    "BatchAPIFake",
    "Drop",
    "Hang",
    "LoopbackServer",
    "PairwiseJudge",
    "Reply",
    "ScriptByMarker",
    "build_chain_model",
    "free_port",
    "save_as_gguf",
    "save_model",
    "save_tiny_family",
    "tiny_llama",
    "tiny_tokenizer",
    "transformers_serve",
    "wait_healthy",
]

if TYPE_CHECKING:
    from eft_eval.testing._batch_api import BatchAPIFake
    from eft_eval.testing._chain_model import build_chain_model, save_as_gguf
    from eft_eval.testing._loopback import Drop, Hang, LoopbackServer, Reply, ScriptByMarker
    from eft_eval.testing._pairwise_judge import PairwiseJudge
    from eft_eval.testing._tiny import save_model, save_tiny_family, tiny_llama, tiny_tokenizer
    from eft_eval.testing._transformers_serve import free_port, transformers_serve, wait_healthy

__getattr__ = lazy_exports(__name__, _EXPORTS)
