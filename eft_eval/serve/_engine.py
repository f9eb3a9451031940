"""The batching engine: a queue of rows feeding the batched, KV-cached EFT decoder on one thread.

Each choice of each request is one *row*. Two schedulings (`scheduling=`, `--scheduling`):

- `step` (the default): continuous batching (`models.ContinuousBatch`). At every decoding step,
  rows that ended leave at once and waiting rows join, in arrival order, up to `max_batch_size`
  rows and `max_prefill_tokens` prefill tokens a step (a long prompt cannot stall every stream; one
  over the budget joins alone). Rows of any settings share the batch: length, stop strings, EOS,
  temperature, top-p, top-k and seed are per row. An idle engine waits for stragglers as `batch` does.
- `batch`: the decoder thread takes the oldest waiting row and every other waiting row the sampler
  treats alike (`Row.batch_key`), up to `max_batch_size`, and decodes them as one batch with
  `decoding.decode` (or the speculative decoder) until the last one ends; rows that arrive
  meanwhile wait for the next batch. Speculative decoding (`speculative_block > 0`) always runs so.

Rows that finish leave at once and their answer goes out then. A row whose client went away is
cancelled at the next step. Randomness is per (seed, prompt, step), so a row gets the same tokens
whatever its batch mates: the same as `EFTModel.generate` with that seed.

The decoder thread reports to each row through its `sink` (called on that thread; the web layer
hands the events to its event loop). The HTTP side never touches the model, except the tokenizer
under `tokenizer_lock` (fast tokenizers must not be used from two threads at once). `submit`
refuses rows with `QueueFull` (a 429) while `max_waiting` rows wait.

If the decoder thread itself dies (not a failed batch, which only fails its rows), every row it
held or that waits is failed with a 503 and `failure` says why: `/health` reports it and `submit`
refuses new rows, instead of requests waiting forever on a thread that is gone.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from eft_eval.errors import EFTEvalError
from eft_eval.models import (
    ComponentStream,
    ContinuousBatch,
    DecodeStep,
    Generation,
    JoiningRow,
    RowOutputs,
    SamplingConfig,
    decode,
    seeded_key,
)
from eft_eval.parsing import parse_number
from eft_eval.serve._metrics import ServeMetrics

if TYPE_CHECKING:
    from eft_eval.models import EFTModel

logger = logging.getLogger(__name__)

_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-to-character table, inverted: byte-level BPE pieces spell bytes with these characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


_UNICODE_TO_BYTE = _byte_level_alphabet()

_MAX_WAITS = 10
"""A new batch waits for stragglers at most this many `batch_wait_s`."""
MAX_BATCH_WAIT_S = 60.0
"""The longest `batch_wait_s`: thread waits refuse absurd timeouts (`inf` killed the decoder thread)."""


@dataclass(frozen=True)
class TokenEvent:
    """A token a row kept, with its EFT log-prob and the top `k` (token id, log-prob) pairs."""

    token: int
    logprob: float
    top: list[tuple[int, float]]


@dataclass(frozen=True)
class DoneEvent:
    generation: Generation


@dataclass(frozen=True)
class ErrorEvent:
    message: str
    status: int = 500
    """The HTTP status the request gets: 500 for a failed batch, 503 when the decoder thread is gone."""


class EngineUnavailable(RuntimeError):
    """`submit` refused: the server is shutting down or its decoder thread has died (a 503)."""


class QueueFull(EngineUnavailable):
    """`submit` refused: `max_waiting` rows already wait (a 429; try again after `retry_after_s`)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


SCHEDULINGS = ("step", "batch")


RowEvent = TokenEvent | DoneEvent | ErrorEvent


@dataclass(eq=False)
class Row:
    """One sequence to generate: one choice of one request."""

    prompt_ids: list[list[int]]
    """`[component] -> token ids`, as `EFTModel.encode` gives for one prompt."""
    key: str
    """The prompt's randomness key (`sampling.prompt_key`)."""
    config: SamplingConfig
    sink: Callable[[RowEvent], None]
    """Receives this row's events, on the decoder thread; must not block."""
    ignore_eos: bool = False
    logprobs: int | None = None
    """None: no per-token events unless `stream`; k >= 0: send log-prob and top-k with each token."""
    stream: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    arrived: float = field(default=0.0, repr=False)
    """When `submit` queued it (`time.monotonic`); the engine's own bookkeeping, as the next two."""
    first_token_at: float = field(default=0.0, repr=False)
    last_token_at: float = field(default=0.0, repr=False)

    @property
    def batch_key(self) -> tuple[SamplingConfig, bool]:
        """Rows decode together when the decoder treats them alike. Their lengths, stop strings and
        seeds may differ (the engine ends each row itself; each row samples with its own seed), and
        an argmax has no temperature or top-p."""
        config = SamplingConfig() if self.config.greedy else self.config
        return dataclasses.replace(config, max_new_tokens=1, stop=(), seed=0), self.ignore_eos

    @property
    def wants_tokens(self) -> bool:
        return self.stream or self.logprobs is not None


class BatchEngine:
    """Owns the decoder thread; `submit` rows from any thread, `stop` drains and joins."""

    def __init__(
        self,
        model: EFTModel,
        *,
        max_batch_size: int = 16,
        speculative_block: int = 0,
        batch_wait_s: float = 0.025,
        scheduling: str = "step",
        max_prefill_tokens: int = 4096,
        max_waiting: int = 0,
        retry_after_s: float = 1.0,
    ) -> None:
        self.model = model
        # Checked here as well as by the flags: a library caller's nan made the decoder spin and
        # never answer, and inf killed its thread.
        self.max_batch_size = int(parse_number(max_batch_size, "max_batch_size", "BatchEngine", integer=True,
                                               minimum=1))
        speculative_block = int(parse_number(speculative_block, "speculative_block", "BatchEngine", integer=True,
                                             minimum=0))
        self.batch_wait_s = float(parse_number(batch_wait_s, "batch_wait_s", "BatchEngine", minimum=0,
                                               maximum=MAX_BATCH_WAIT_S))
        if scheduling not in SCHEDULINGS:
            raise EFTEvalError(f"BatchEngine: scheduling={scheduling!r} is not one of {', '.join(SCHEDULINGS)}")
        self.max_prefill_tokens = int(parse_number(max_prefill_tokens, "max_prefill_tokens", "BatchEngine",
                                                   integer=True, minimum=1))
        self.max_waiting = int(parse_number(max_waiting, "max_waiting", "BatchEngine", integer=True, minimum=0))
        """Most rows waiting before `submit` answers `QueueFull` (0: no limit)."""
        self.retry_after_s = float(parse_number(retry_after_s, "retry_after_s", "BatchEngine", minimum=0,
                                                maximum=3600))
        self.tokenizer_lock = threading.Lock()
        self._decoder: Callable[..., list[Generation]] = decode
        # Speculative rows verify blocks of drafted tokens at their own pace: they keep the batch path.
        self.scheduling = "batch" if speculative_block > 0 else scheduling
        if speculative_block > 0:
            from eft_eval.models import speculative_decoder

            self._decoder = speculative_decoder(model, speculative_block, "exact")
        self.metrics = ServeMetrics()
        self._pending: deque[Row] = deque()
        self._wakeup = threading.Condition()
        self._stopping = False
        self._last_arrival = 0.0
        self._last_batch_size = 1
        self._last_batch_end = 0.0
        self._thread = threading.Thread(target=self._loop, name="eft-serve-decoder", daemon=True)
        self._current: list[Row] = []
        """The batch being decoded: failed with the rest if the thread dies."""
        self._live: dict[int, Row] = {}
        """The running batch of the step scheduling, by tag: failed with the rest if the thread dies."""
        self.failure: str | None = None
        """Why the decoder thread died (None while it runs): `/health` reports it."""
        self.batches = 0
        """Batches decoded so far (tests and the benchmark read it)."""
        self.largest_batch = 0
        self.rows = 0
        self.decode_seconds = 0.0
        self.finished: Counter[str] = Counter()
        """Rows ended so far, by finish reason (`eos`, `stop`, `length`, `cancelled`, `failed`)."""

    # -- the web side ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, rows: Collection[Row]) -> None:
        with self._wakeup:
            if self.failure is not None:
                raise EngineUnavailable(self.failure)
            if self._stopping:
                raise EngineUnavailable("the server is shutting down")
            # A request larger than the limit is still taken when nothing waits: it could never fit.
            if self.max_waiting and self._pending and len(self._pending) + len(rows) > self.max_waiting:
                self.metrics.rejected.inc(len(rows))
                raise QueueFull(f"the server is busy: {len(self._pending)} rows wait already (--max-waiting "
                                f"{self.max_waiting}); try again later", self.retry_after_s)
            now = time.monotonic()
            for row in rows:
                row.arrived = now
            self._pending.extend(rows)
            self.metrics.waiting.set(len(self._pending))
            self._last_arrival = now
            self._wakeup.notify()

    def stop(self, timeout: float | None = None) -> None:
        """Finish every submitted row, then end the decoder thread."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.batches:
            logger.info("decoded %d rows in %d batches (mean batch %.1f, largest %d, %.2f s decoding)", self.rows,
                        self.batches, self.rows / self.batches, self.largest_batch, self.decode_seconds)

    @property
    def waiting(self) -> int:
        """Rows submitted that have not joined a batch yet."""
        return len(self._pending)

    def problem(self) -> str | None:
        """Why this engine cannot answer (its decoder thread died or is not running), else None."""
        if self.failure is not None:
            return self.failure
        if self._thread.ident is not None and not self._thread.is_alive() and not self._stopping:
            return "the decoder thread is not running"
        return None

    def encode(self, prompt: Any, raw: bool = False) -> list[list[int]]:
        """Token ids of one prompt for every unique component (`[component] -> ids`)."""
        with self.tokenizer_lock:
            return [ids[0] for ids in self.model.encode([prompt], raw=raw)]

    def detokenize(self, token_ids: list[int]) -> str:
        with self.tokenizer_lock:
            return self.model.detokenize(token_ids)

    def token_text(self, token_id: int) -> str:
        with self.tokenizer_lock:
            return str(self.model.tokenizer.decode([token_id]))

    def token_bytes(self, token_id: int) -> list[int]:
        """The token's own UTF-8 bytes (OpenAI's `bytes`): a token holding part of a character
        decodes to U+FFFD alone, but its bytes joined with its neighbours' give the character."""
        with self.tokenizer_lock:
            piece = str(self.model.tokenizer.convert_ids_to_tokens(token_id))
            text = str(self.model.tokenizer.decode([token_id]))
        if _BYTE_TOKEN.fullmatch(piece):  # sentencepiece byte fallback: <0xE2>
            return [int(piece[3:5], 16)]
        if self._byte_level and all(c in _UNICODE_TO_BYTE for c in piece):
            return [_UNICODE_TO_BYTE[c] for c in piece]
        return list(text.encode("utf-8"))

    @functools.cached_property
    def _byte_level(self) -> bool:
        backend = getattr(self.model.tokenizer, "backend_tokenizer", None)
        return type(getattr(backend, "decoder", None)).__name__ == "ByteLevel"

    # -- the decoder thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            if self.scheduling == "step":
                self._decode_steps()
            else:
                self._decode_batches()
        except BaseException as error:  # noqa: BLE001 (the thread ends either way; its rows must hear why)
            self._die(error)

    def _decode_batches(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._last_batch_size = len(batch)
            started = time.perf_counter()
            self._current = batch
            self.metrics.running.set(len(batch))
            try:
                self._decode(batch)
            except Exception as error:  # a failed batch must not take the server down
                logger.exception("decoding a batch of %d rows failed", len(batch))
                for row in batch:
                    self._fail(row, error)
            self._current = []
            self.metrics.running.set(0)
            self._last_batch_end = time.monotonic()
            self.decode_seconds += time.perf_counter() - started

    def _die(self, error: BaseException) -> None:
        """Record why the thread ends and fail every row it held or that still waits (a 503 each)."""
        logger.critical("the decoder thread died; every request now fails with 503", exc_info=error)
        with self._wakeup:
            self.failure = (f"the decoder thread stopped ({type(error).__name__}: {error}); "
                            "restart the server").replace("\n", " ")
            rows = [*self._current, *self._live.values(), *self._pending]
            self._pending.clear()
            self._current = []
            self._live = {}
        for row in rows:
            row.sink(ErrorEvent(self.failure, status=503))

    def _next_batch(self) -> list[Row] | None:
        with self._wakeup:
            if not self._wait_for_rows():
                return None
            self._drop_cancelled_waiting()
            if not self._pending:
                return []
            key = self._pending[0].batch_key
            batch = [r for r in self._pending if r.batch_key == key][: self.max_batch_size]
            for row in batch:
                self._pending.remove(row)
            self.metrics.waiting.set(len(self._pending))
            return batch

    def _wait_for_rows(self) -> bool:
        """Wait (holding `_wakeup`) until rows wait and stragglers had their chance; False: stop now."""
        while not self._pending and not self._stopping:
            self._wakeup.wait()
        if not self._pending:
            return False
        # Requests sent together reach the server milliseconds apart, and so do the next
        # requests of clients whose answers just went out (harnesses run closed loops). So a
        # new batch waits while requests keep arriving less than `batch_wait_s` apart, and
        # until as many rows are waiting as the last batch had; never past `_MAX_WAITS` times
        # `batch_wait_s`, and not at all once the batch is full.
        window = _MAX_WAITS * self.batch_wait_s
        cap = time.monotonic() + window
        returning = time.monotonic() - self._last_batch_end < window  # else its clients are not coming back
        expected = min(self.max_batch_size, self._last_batch_size) if returning else 1
        while len(self._pending) < self.max_batch_size and not self._stopping:
            quiet = self._last_arrival + self.batch_wait_s
            until = cap if len(self._pending) < expected else min(quiet, cap)
            left = until - time.monotonic()
            if left <= 0:
                break
            self._wakeup.wait(left)
        return True

    def _drop_cancelled_waiting(self) -> None:
        """End the waiting rows whose clients went away (holding `_wakeup`)."""
        for row in [r for r in self._pending if r.cancelled.is_set()]:
            self._pending.remove(row)
            self._finish(row, Generation("", [], "cancelled"))

    # -- step scheduling ------------------------------------------------------------------------

    def _decode_steps(self) -> None:
        """Continuous batching: each step, ended rows leave and waiting rows join (module docstring)."""
        model = self.model
        batch = ContinuousBatch([c.model for c in model.forward_components], model.compose, model.pad_token_id,
                                model.vocab_size, self.detokenize)
        tags = itertools.count()
        peak = 0
        while True:
            joining = self._admit(len(batch))
            if joining is None:
                return
            started = time.perf_counter()
            try:
                if joining:
                    if not len(batch):
                        self.batches += 1
                    new_tags = [next(tags) for _ in joining]
                    self._live.update(zip(new_tags, joining))
                    self.rows += len(joining)
                    self.metrics.prompt_tokens.inc(sum(len(r.prompt_ids[0]) for r in joining))
                    batch.join([self._joining_row(row) for row in joining], new_tags)
                if len(batch):
                    peak = max(peak, len(batch))
                    self.largest_batch = max(self.largest_batch, len(batch))
                    self.metrics.occupancy.observe(len(batch))
                    self._report_step(batch)
            except Exception as error:  # a failed step fails its rows, not the server
                logger.exception("a decoding step of %d rows failed", len(self._live))
                for row in self._live.values():
                    self._fail(row, error)
                self._live = {}
                batch = ContinuousBatch(batch.models, batch.compose, batch.pad_id, batch.vocab_size,
                                        batch.detokenize)
            self.metrics.running.set(len(batch))
            self.decode_seconds += time.perf_counter() - started
            if not len(batch):
                self._last_batch_size, peak = max(1, peak), 0
                self._last_batch_end = time.monotonic()

    def _admit(self, running: int) -> list[Row] | None:
        """The waiting rows that join before the next step, oldest first (None: stop, nothing is left).

        An idle engine waits for rows (and stragglers, as `batch` does); a running one takes what waits.
        Rows join while the batch has room and their padded prefill (rows x longest prompt) stays within
        `max_prefill_tokens`; the oldest waiting row joins alone even if it is over (it would never fit).
        """
        with self._wakeup:
            if not running and not self._wait_for_rows():
                return None
            self._drop_cancelled_waiting()
            joining: list[Row] = []
            width = 0
            while self._pending and running + len(joining) < self.max_batch_size:
                longest = max(len(ids) for ids in self._pending[0].prompt_ids)
                if joining and max(width, longest) * (len(joining) + 1) > self.max_prefill_tokens:
                    break
                width = max(width, longest)
                joining.append(self._pending.popleft())
            self.metrics.waiting.set(len(self._pending))
            return joining

    def _joining_row(self, row: Row) -> JoiningRow:
        eos = frozenset() if row.ignore_eos else frozenset(self.model.eos_token_ids)
        return JoiningRow(row.prompt_ids, seeded_key(row.config.seed, row.key), row.config, eos)

    def _report_step(self, batch: ContinuousBatch) -> None:
        """One step of the running batch: tokens out, ended rows answered, cancelled rows taken out."""
        step = batch.step()
        rows = [self._live[tag] for tag in step.tags]
        finished = {p: step.finished[tag] for p, tag in enumerate(step.tags) if tag in step.finished}
        top_k = max((row.logprobs or 0 for row in rows), default=0)
        _report_tokens(DecodeStep(list(range(len(rows))), step.tokens, step.logprobs, finished), rows, top_k)
        now = time.monotonic()
        for row in rows:
            self._observe_token(row, now)
        for tag, generation in step.finished.items():
            self._finish(self._live.pop(tag), generation)
        cancelled = [tag for tag, row in self._live.items() if row.cancelled.is_set()]
        for tag, generation in batch.cancel(cancelled).items():
            self._finish(self._live.pop(tag), generation)

    # -- what every row goes through ------------------------------------------------------------

    def _observe_token(self, row: Row, now: float) -> None:
        if not row.first_token_at:
            row.first_token_at = now
            self.metrics.ttft.observe(now - row.arrived)
        else:
            self.metrics.per_token.observe(now - row.last_token_at)
        row.last_token_at = now

    def _finish(self, row: Row, generation: Generation) -> None:
        """A row's answer goes out; counted by how it ended."""
        self.finished[generation.finish_reason] += 1
        self.metrics.rows.labels(generation.finish_reason).inc()
        self.metrics.generation_tokens.inc(len(generation.token_ids))
        if row.arrived:
            self.metrics.latency.observe(time.monotonic() - row.arrived)
        row.sink(DoneEvent(generation))

    def _fail(self, row: Row, error: BaseException) -> None:
        self.finished["failed"] += 1
        self.metrics.rows.labels("failed").inc()
        row.sink(ErrorEvent(f"generation failed: {type(error).__name__}: {error}"))

    # -- batch scheduling -----------------------------------------------------------------------

    def _decode(self, batch: list[Row]) -> None:
        if not batch:
            return
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        self.rows += len(batch)
        model = self.model
        streams = [
            ComponentStream(component.model, [row.prompt_ids[index] for row in batch], model.pad_token_id,
                            model.vocab_size)
            for index, component in enumerate(model.forward_components)
        ]
        first = batch[0]
        eos_ids = set() if first.ignore_eos else model.eos_token_ids
        # Each row's stop strings and length limit are checked here, per row (`ends`, the decoder's
        # own end-of-row rules); the decoder only ends rows at EOS. One token past the longest limit:
        # its own length check never fires.
        longest = max(row.config.max_new_tokens for row in batch)
        config = dataclasses.replace(first.config, max_new_tokens=longest + 1, stop=())
        ends = RowOutputs(len(batch), set(), [row.config for row in batch], self.detokenize)
        reported: set[int] = set()
        top_k = max((row.logprobs or 0 for row in batch), default=0)

        def on_step(step: DecodeStep) -> list[int]:
            _report_tokens(step, batch, top_k)
            now = time.monotonic()
            for index in step.rows:
                self._observe_token(batch[index], now)
            self.metrics.occupancy.observe(len(step.rows))
            for index, generation in step.finished.items():
                self._finish(batch[index], generation)
                reported.add(index)
            stop_now = []
            for index, token in zip(step.rows, step.tokens):
                if index in step.finished:
                    continue
                if not ends.add(index, token):
                    ending = ends.results[index]
                    assert ending is not None  # add() is False only when it ended the row
                    self._finish(batch[index], ending)
                    reported.add(index)
                    stop_now.append(index)
                elif batch[index].cancelled.is_set():
                    stop_now.append(index)
            return stop_now

        row_keys = [seeded_key(row.config.seed, row.key) for row in batch]  # each row its own seed
        generations = self._decoder(streams, model.compose, config, row_keys, eos_ids, self.detokenize,
                                    on_step=on_step)
        for index, (row, generation) in enumerate(zip(batch, generations)):
            if index not in reported:
                self._finish(row, generation)


def _report_tokens(step: DecodeStep, batch: list[Row], top_k: int) -> None:
    """Send each row that wants them its token, the token's EFT log-prob and the top-k log-probs."""
    positions = [p for p, index in enumerate(step.rows) if batch[index].wants_tokens]
    if not positions:
        return
    selected = step.logprobs[positions] if len(positions) < len(step.rows) else step.logprobs
    chosen_ids = torch.tensor([step.tokens[p] for p in positions], device=selected.device)
    chosen = selected.gather(-1, chosen_ids.unsqueeze(-1)).squeeze(-1).tolist()
    top_values: list[list[float]] = [[] for _ in positions]
    top_ids: list[list[int]] = [[] for _ in positions]
    if top_k > 0:
        values, ids = selected.topk(min(top_k, selected.shape[-1]), dim=-1)
        top_values, top_ids = values.tolist(), ids.tolist()
    for i, p in enumerate(positions):
        index = step.rows[p]
        row = batch[index]
        finished = step.finished.get(index)
        if finished is not None and finished.finish_reason == "eos":
            continue  # the EOS token ends the row; it is not part of the answer
        k = row.logprobs or 0
        top = list(zip(top_ids[i][:k], top_values[i][:k]))
        row.sink(TokenEvent(step.tokens[p], float(chosen[i]), top))
