"""`--judge-mode batch`: judge through OpenAI's Batch API (half the price, answers within 24 h).

`BatchBackend` is a judge backend like the live one, so the engine's cache, re-asks and summaries
work unchanged: `complete()` queues a request and waits. Once every unfinished judgment is waiting
(the engine says how many there are), the queue becomes one or more batch files (split at the
API's per-file request and byte limits), each uploaded (`files.create(purpose="batch")`) and
submitted (`batches.create`), polled with a progress line, downloaded, and matched back by
`custom_id` (a hash of the request body). Unreadable answers re-asked by the engine, and lines the
batch failed (errors, expiry), go into a follow-up batch, or live with `batch.fallback="live"`.

Every batch is recorded in a small JSON file (`JudgeConfig.batch.state`, in the run folder) the
moment it exists, and the uploaded file just before: a killed run re-attaches to its batches and
downloads their answers instead of submitting (and paying for) the same requests again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import write_json
from eft_eval.judging._backends import (
    BatchesSubmitted,
    JudgeBackend,
    OpenAIBackend,
    RequestFailed,
    completion_from_body,
)
from eft_eval.judging._cache import Completion
from eft_eval.judging._config import JudgeConfig
from eft_eval.judging._http import rename_max_tokens
from eft_eval.judging._spec import JudgeSpec, Message
from eft_eval.redact import client_url_and_headers

logger = logging.getLogger(__name__)

ENDPOINT: Final = "/v1/chat/completions"
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
# Per-line error codes worth another try (anything else, e.g. an invalid request, fails the judgment).
# A cancelled batch is not: someone meant it (`--cancel`), re-submitting would undo that.
_RETRY_CODES = {"batch_expired", "rate_limit_exceeded", "server_error", "timeout"}
_UNLISTED = "*"  # key of the failure of requests a finished batch does not list (never a custom_id)
IDLE_FLUSH_S = 1.0
"""Submit what is queued after this long without a new request, even if not every judgment waits."""


def custom_id(body: dict[str, Any]) -> str:
    """The request's id inside a batch: the same body always gets the same id (re-attaching relies on it)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class _LineFailure:
    message: str
    retry: bool


@dataclass
class _Request:
    body: dict[str, Any]
    future: asyncio.Future[Completion | _LineFailure]
    line: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.line = (json.dumps({"custom_id": custom_id(self.body), "method": "POST", "url": ENDPOINT,
                                 "body": self.body}) + "\n").encode()


class BatchState:
    """The run folder's record of submitted batches: `{"batches": [{batch_id, input_file_id, status, ...}]}`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"batches": []}
        except (OSError, ValueError) as error:
            raise EFTEvalError(f"{path}: cannot read the batch record ({error}); delete it to start over") from error

    def open_batches(self) -> list[dict[str, Any]]:
        return [b for b in self.data["batches"] if b["status"] in ("uploaded", "submitted")]

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        self.data["batches"].append(entry)
        self.save()
        return entry

    def save(self) -> None:
        """Atomically: a process killed while writing leaves the previous record, never half of one."""
        write_json(self.path, self.data)


class BatchBackend:
    """Answers through the Batch API; see the module docstring. A `CollectingBackend`: the engine
    starts every judgment at once and reports each finished one (`expect`, `judgment_done`)."""

    def __init__(self, config: JudgeConfig, submit_only: bool = False) -> None:
        from openai import AsyncOpenAI

        self.config = config
        self.submit_only = submit_only
        """Submit the batches, record them and raise `BatchesSubmitted` instead of waiting."""
        base_url, headers = client_url_and_headers(config.resolved_base_url())  # user:pw@ as basic auth
        self._client = AsyncOpenAI(api_key=config.resolved_api_key(), base_url=base_url,
                                   default_headers=headers or None, timeout=config.timeout,
                                   max_retries=config.max_retries)
        self._live: JudgeBackend | None = None
        self.state = BatchState(config.resolved_batch_state())
        self._queue: dict[str, _Request] = {}  # by custom_id: identical requests are asked once
        self._waiting = 0  # complete() calls waiting on a queued (not yet submitted) request
        self._outstanding = 0  # judgments not finished
        self._round: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._recovered: dict[str, Completion | _LineFailure] | None = None
        self._mine: list[dict[str, Any]] = []  # state entries this process submitted or re-attached to

    # -- what the engine calls -------------------------------------------------------------------
    def expect(self, judgments: int) -> None:
        self._outstanding += judgments

    def judgment_done(self, answers: int = 1) -> None:
        """`answers` of the expected answers will not be asked for any more."""
        self._outstanding -= answers
        self._maybe_submit()

    async def complete(self, messages: list[Message], model: str, params: dict[str, Any],
                       spec: JudgeSpec) -> Completion:
        # A conversation holding an earlier answer is the engine re-asking after an unreadable score.
        if self.config.batch.fallback == "live" and any(m.get("role") == "assistant" for m in messages):
            return await self._live_backend().complete(messages, model, params, spec)
        body = {"model": model, "messages": messages, **params}
        failure = _LineFailure("no answer", retry=False)
        for attempt in range(self.config.max_retries + 1):
            result = await self._enqueue(body)
            if isinstance(result, Completion):
                return result
            failure = result
            if "max_completion_tokens" in failure.message and "max_tokens" in body:
                body = rename_max_tokens(body)
                continue
            if not failure.retry:
                break
            if self.config.batch.fallback == "live":
                return await self._live_backend().complete(messages, model, params, spec)
            logger.info("batch line failed (%s); asking again in a follow-up batch (%d)", failure.message, attempt + 1)
        raise RequestFailed(f"batch: {failure.message}")

    async def aclose(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._round is not None and not self._round.done():
            self._round.cancel()
        if self._outstanding <= 0:  # every judgment has its answer in the cache now
            for entry in self._mine:
                entry["status"] = "collected"
            if self._mine:
                self.state.save()
        await self._client.close()
        if self._live is not None:
            await self._live.aclose()

    # -- queueing --------------------------------------------------------------------------------
    def _live_backend(self) -> JudgeBackend:
        if self._live is None:
            self._live = OpenAIBackend(self.config)
        return self._live

    async def _enqueue(self, body: dict[str, Any]) -> Completion | _LineFailure:
        key = custom_id(body)
        request = self._queue.get(key)
        if request is None:
            request = self._queue[key] = _Request(body, asyncio.get_running_loop().create_future())
        self._waiting += 1
        self._maybe_submit()
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(IDLE_FLUSH_S, self._maybe_submit, True)
        try:
            return await asyncio.shield(request.future)
        finally:
            if self._queue.get(key) is request and not request.future.done():  # cancelled while queued
                self._waiting -= 1

    def _maybe_submit(self, idle: bool = False) -> None:
        if self._round is not None and not self._round.done():
            return
        if self._queue and (idle or self._waiting >= self._outstanding):
            requests, self._queue, self._waiting = self._queue, {}, 0
            self._round = asyncio.ensure_future(self._run_round(requests))
            self._round.add_done_callback(self._round_done)

    def _round_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._maybe_submit()  # requests queued while this round ran

    async def _run_round(self, requests: dict[str, _Request]) -> None:
        try:
            if self._recovered is None:
                if self.submit_only and self.state.open_batches():
                    raise BatchesSubmitted(f"batches already submitted, recorded in {self.state.path}")
                self._recovered = await self._reattach()
            left = {}
            for key, request in requests.items():
                if key in self._recovered:  # answered by a batch a killed run submitted
                    request.future.set_result(self._recovered.pop(key))
                else:
                    left[key] = request
            chunks = self._split(left)
            if self.submit_only:
                ids = await asyncio.gather(*(self._submit(chunk) for chunk in chunks))
                raise BatchesSubmitted(f"submitted batch(es) {', '.join(ids)}, recorded in {self.state.path}")
            results = await asyncio.gather(*(self._submit_and_wait(chunk) for chunk in chunks))
            for chunk, found in zip(chunks, results):
                for key, request in chunk.items():
                    request.future.set_result(found.get(key) or found.get(_UNLISTED)
                                              or _LineFailure("missing from the batch output", True))
        except BaseException as error:
            import openai

            if isinstance(error, openai.APIError):
                from eft_eval.judging._retry import describe_error

                error = EFTEvalError(f"the Batch API refused a request ({describe_error(error)}); "
                                     f"submitted batches stay recorded in {self.state.path}")
            for request in requests.values():
                if not request.future.done():
                    request.future.set_exception(error if isinstance(error, Exception) else RequestFailed("stopped"))
            if not isinstance(error, Exception):
                raise

    def _split(self, requests: dict[str, _Request]) -> list[dict[str, _Request]]:
        """Chunks within the per-file request count and byte limits, in queue order."""
        chunks: list[dict[str, _Request]] = []
        size = 0
        for key, request in requests.items():
            if len(request.line) > self.config.batch.max_bytes:
                request.future.set_result(_LineFailure(
                    f"the request is {len(request.line)} bytes, over the batch file limit "
                    f"{self.config.batch.max_bytes}",
                    retry=False))
                continue
            if not chunks or len(chunks[-1]) >= self.config.batch.max_requests or \
                    size + len(request.line) > self.config.batch.max_bytes:
                chunks.append({})
                size = 0
            chunks[-1][key] = request
            size += len(request.line)
        return chunks

    # -- the Batch API -----------------------------------------------------------------------------
    async def _submit_and_wait(self, chunk: dict[str, _Request]) -> dict[str, Completion | _LineFailure]:
        return await self._wait_and_download(await self._submit(chunk))

    async def _submit(self, chunk: dict[str, _Request]) -> str:
        """Upload and submit one batch file; its batch id. Recorded at each step."""
        data = b"".join(request.line for request in chunk.values())
        uploaded = await self._client.files.create(file=("eft-eval-judge.jsonl", data), purpose="batch")
        # Recorded before the batch exists: a kill between upload and create is found again by
        # looking the file up among the account's batches.
        entry = self.state.add({"input_file_id": uploaded.id, "batch_id": None, "requests": len(chunk),
                                "status": "uploaded", "created": time.time()})
        self._mine.append(entry)
        batch = await self._client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT,
                                                  completion_window="24h", metadata={"created_by": "eft-eval"})
        entry.update(batch_id=batch.id, status="submitted")
        self.state.save()
        logger.info("submitted batch %s (%d requests, %d bytes)", batch.id, len(chunk), len(data))
        return str(batch.id)

    async def _reattach(self) -> dict[str, Completion | _LineFailure]:
        """Answers of the batches a previous (killed) run recorded but never collected."""
        found: dict[str, Completion | _LineFailure] = {}
        for entry in self.state.open_batches():
            if entry["batch_id"] is None:
                entry["batch_id"] = await self._find_batch_of(entry["input_file_id"])
                if entry["batch_id"] is None:
                    entry["status"] = "abandoned"  # uploaded, never submitted: nothing to pay for
                    self.state.save()
                    continue
                entry["status"] = "submitted"
                self.state.save()
            print(f"re-attaching to batch {entry['batch_id']} (recorded in {self.state.path})", file=sys.stderr)
            self._mine.append(entry)
            found.update(await self._wait_and_download(entry["batch_id"]))
        return found

    async def _find_batch_of(self, input_file_id: str) -> str | None:
        async for batch in self._client.batches.list(limit=100):
            if batch.input_file_id == input_file_id:
                return str(batch.id)
        return None

    async def _wait_and_download(self, batch_id: str) -> dict[str, Completion | _LineFailure]:
        last = ""
        while True:
            batch = await self._client.batches.retrieve(batch_id)
            counts = batch.request_counts
            line = f"batch {batch_id}: {batch.status}" + (
                f", {counts.completed + counts.failed}/{counts.total} done, {counts.failed} failed" if counts else "")
            if line != last:
                if self.config.progress:
                    print(line, file=sys.stderr, flush=True)
                else:
                    logger.info(line)
                last = line
            if batch.status not in ACTIVE:
                break
            await asyncio.sleep(self.config.batch.poll_interval)
        found: dict[str, Completion | _LineFailure] = {}
        for file_id in (batch.error_file_id, batch.output_file_id):  # output last: an answer wins
            if file_id:
                content = await self._client.files.content(file_id)
                for text in content.text.splitlines():
                    if text.strip():
                        key, result = _read_line(json.loads(text))
                        found[key] = result
        if batch.status == "failed":  # the file was refused (validation): asking again would fail again
            errors = "; ".join(str(e.message) for e in (batch.errors.data or [])) if batch.errors else ""
            logger.warning("batch %s failed: %s", batch_id, errors or "no reason given")
            found[_UNLISTED] = _LineFailure(f"batch {batch_id} failed: {errors or 'no reason given'}", retry=False)
        elif batch.status == "cancelled":
            found[_UNLISTED] = _LineFailure(f"batch {batch_id} was cancelled", retry=False)
        return found


def _read_line(line: dict[str, Any]) -> tuple[str, Completion | _LineFailure]:
    """One line of a batch output or error file: the answer, or why there is none."""
    key = str(line.get("custom_id"))
    response = line.get("response") or {}
    error = line.get("error")
    if error:
        code = str(error.get("code") or "")
        return key, _LineFailure(f"{code}: {error.get('message')}", retry=code in _RETRY_CODES)
    status = int(response.get("status_code") or 0)
    body = response.get("body") or {}
    if status != 200:
        message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
        return key, _LineFailure(f"HTTP {status}: {message}", retry=status in (408, 409, 429) or status >= 500)
    try:
        completion = completion_from_body(body, str(body.get("model") or ""))
    except (ValueError, KeyError, TypeError, AttributeError) as problem:
        return key, _LineFailure(f"unreadable batch answer: {problem}", retry=True)
    return key, Completion(text=completion.text, usage={**completion.usage, "batch": 1}, model=completion.model)


def cancel_batches(config: JudgeConfig) -> list[str]:
    """Cancel the batches recorded in `config`'s batch state that are still running; their ids."""
    import openai

    state = BatchState(config.resolved_batch_state())
    base_url, headers = client_url_and_headers(config.resolved_base_url())  # user:pw@ as basic auth
    client = openai.OpenAI(api_key=config.resolved_api_key(), base_url=base_url, default_headers=headers or None,
                           timeout=config.timeout, max_retries=config.max_retries)
    cancelled = []
    try:
        for entry in state.open_batches():
            if entry["batch_id"] is None:  # killed between upload and record: was the batch created?
                entry["batch_id"] = next((str(b.id) for b in client.batches.list(limit=100)
                                          if b.input_file_id == entry["input_file_id"]), None)
            if entry["batch_id"] is None:
                entry["status"] = "abandoned"
                continue
            batch = client.batches.retrieve(entry["batch_id"])
            if batch.status in ACTIVE:
                client.batches.cancel(entry["batch_id"])
                cancelled.append(entry["batch_id"])
            entry["status"] = "cancelled"
            state.save()  # each cancellation recorded as it happens
    except openai.OpenAIError as error:
        from eft_eval.judging._retry import describe_error

        raise EFTEvalError(f"cancelling batches failed ({describe_error(error)}); cancelled so far: "
                           f"{', '.join(cancelled) or 'none'}; the rest stay recorded in {state.path}") from None
    finally:
        state.save()
        client.close()
    return cancelled
