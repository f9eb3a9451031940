"""When and how long to wait before retrying a judge request.

The `openai` client can retry by itself, but we set its `max_retries=0` and retry here: so that a
waiting request does not hold one of the run's concurrency slots, so that the number of tries is
one setting of ours, and so that a failure after the last try becomes a recorded `failed` judgment
instead of an exception that stops the run.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Literal

from eft_eval.judging._http import ConnectionFailure, HTTPStatusFailure

Verdict = Literal["retry", "give_up", "fatal", "unexpected"]

# Longest Retry-After honoured, seconds; a server asking for more is treated as asking for this.
MAX_RETRY_AFTER = 300.0
# Statuses worth retrying: rate limits, timeouts, conflicts, server errors.
_RETRY_STATUSES = {408, 409, 429}
# Statuses that mean the whole run is misconfigured (bad key, no access, no such model or URL).
_FATAL_STATUSES = {401, 403, 404}


def classify(error: BaseException) -> Verdict:
    """What to do after `error` from one chat-completion request."""
    import openai  # imported here so that `eft-eval --help` does not pay for it

    # Live requests raise the _http errors; the Batch API's calls go through openai and raise its.
    if isinstance(error, (HTTPStatusFailure, openai.APIStatusError)):
        if error.status_code in _FATAL_STATUSES:
            return "fatal"
        if error.status_code in _RETRY_STATUSES or error.status_code >= 500:
            return "retry"
        return "give_up"
    # Timeouts and dropped or refused connections (APITimeoutError is an APIConnectionError),
    # and 200 responses whose body is not a chat completion.
    if isinstance(error, (ConnectionFailure, openai.APIConnectionError, openai.APIResponseValidationError,
                          ValueError, KeyError, AttributeError, TypeError, IndexError)):
        return "retry"
    # Other API errors (e.g. 400 for a too-long prompt) fail this item only; anything else is a bug.
    return "give_up" if isinstance(error, openai.OpenAIError) else "unexpected"


def retry_after_seconds(error: BaseException) -> float | None:
    """The server's requested wait (`retry-after-ms` or `Retry-After`, seconds or HTTP date)."""
    headers = getattr(error, "headers", None)  # HTTPStatusFailure
    if headers is None:  # openai's errors keep them on their response
        headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    if (milliseconds := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - time.time())


def backoff_delay(retry: int, base: float, cap: float, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `retry` (0-based).

    Retry-After wins when the server sends it (it knows when the rate window reopens); otherwise
    exponential backoff with "equal jitter" (half fixed, half random) so that many concurrent
    requests failing together do not retry in lock step.
    """
    if retry_after is not None:
        # Not limited by `cap`: waiting less than asked only earns another 429.
        return min(retry_after, MAX_RETRY_AFTER)
    exponential = min(cap, base * 2**retry)
    return exponential / 2 + (rng or random).uniform(0, exponential / 2)


def describe_error(error: BaseException) -> str:
    """One line for the `error` field of a failed judgment (never includes request headers)."""
    status = getattr(error, "status_code", None)
    name = getattr(error, "reason", None) or type(error).__name__  # "HTTP 429 Too Many Requests: ..."
    message = str(error).splitlines()[0][:200] if str(error) else ""
    return f"HTTP {status} {name}: {message}" if status else f"{name}: {message}"
