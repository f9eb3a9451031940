"""The engine against a scriptable OpenAI-compatible server on 127.0.0.1: faults, limits, cache."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from pathlib import Path

import pytest

from eft_eval.errors import EFTEvalError
from eft_eval.judging import (
    JudgeConfig,
    JudgeItem,
    judge_items,
    judge_items_sync,
    load_judges,
)
from eft_eval.judging._retry import backoff_delay, retry_after_seconds
from eft_eval.testing import Drop, Hang, LoopbackServer, Reply, ScriptByMarker

OK = Reply(text="Reason: The response is accurate.\nScore: 1")
FACTUALITY, HELPFULNESS = load_judges(["factuality", "helpfulness"])
STATUSES = {"scored", "abstained", "failed"}
WAIT_S = 60.0
"""How long a test waits for a condition (requests in flight, callbacks arrived): generous, since a
busy machine only makes things slower; a test that passes never waits this long."""


def marker(index: int) -> str:
    return f"[ITEM-{index:02d}]"


def make_items(n: int) -> list[JudgeItem]:
    return [JudgeItem(query=f"Question {i}?", response=f"{marker(i)} An answer.") for i in range(n)]


def config(server: LoopbackServer, tmp_path: Path, **overrides: object) -> JudgeConfig:
    settings: dict = {"base_url": server.base_url, "api_key": "sk-test", "concurrency": 4, "max_retries": 3,
                      "timeout": 5.0, "backoff_base": 0.05, "backoff_max": 0.5, "max_parse_retries": 2,
                      "cache_path": tmp_path / "cache.sqlite", "progress": False}
    settings.update(overrides)
    return JudgeConfig(**settings)


def requests_for(server: LoopbackServer, index: int) -> list[int]:
    """Positions of the requests about item `index`."""
    return [n for n, body in enumerate(server.requests) if marker(index) in body["messages"][0]["content"]]


def test_faults_end_scored_abstained_or_failed_and_a_rerun_resumes(tmp_path: Path) -> None:
    script = ScriptByMarker(
        {
            marker(0): [Reply(text=None, status=429, headers={"Retry-After": "1"}), OK],
            marker(1): [Reply(text=None, status=500), Reply(text=None, status=503), OK],
            marker(2): [Hang(30), OK],
            marker(3): [Drop(), OK],
            marker(4): [Reply(text="It looks fine to me."), OK],  # malformed: re-asked
            marker(5): [Reply(text="Reason: many errors\nScore: -3")] * 3,  # out of range every time
            marker(6): [Reply(text="Reason: an unethical request.\nScore: None")],
            marker(7): [Reply(text=None, status=500)] * 4,  # every try fails
            marker(8): [Reply(body="this is not json"), OK],
            marker(9): [Reply(text=None), OK],  # empty content
        },
        default=OK,
    )
    items = make_items(20)
    seen: list[tuple[int, str]] = []
    with LoopbackServer(script) as server:
        settings = config(server, tmp_path)
        results = judge_items_sync(items, [FACTUALITY], settings, on_result=lambda i, name, j: seen.append((i, name)))

        # every item judged exactly once, none lost or duplicated
        assert sorted(seen) == [(i, "factuality") for i in range(20)]
        assert len(results) == 20 and all(list(r) == ["factuality"] for r in results)
        judgments = [r["factuality"] for r in results]
        assert all(j["status"] in STATUSES for j in judgments)
        assert all((j["score"] is None) == (j["status"] != "scored") for j in judgments)  # never a 0 for a failure

        by_status = {i: j["status"] for i, j in enumerate(judgments)}
        assert [i for i, s in by_status.items() if s == "failed"] == [5, 7]
        assert [i for i, s in by_status.items() if s == "abstained"] == [6]

        # 429: waited for Retry-After (1 s, far above the 0.05 s backoff) before the second try
        first, second = requests_for(server, 0)
        assert server.request_times[second] - server.request_times[first] >= 0.95
        assert len(requests_for(server, 1)) == 3 and judgments[1]["score"] == 1.0
        assert len(requests_for(server, 2)) == 2 and judgments[2]["status"] == "scored"  # hang timed out
        assert len(requests_for(server, 3)) == 2 and judgments[3]["status"] == "scored"  # dropped connection
        assert len(requests_for(server, 8)) == 2 and judgments[8]["status"] == "scored"  # body not JSON

        # malformed answer: re-asked in the same conversation, with the reason it could not be read
        assert judgments[4]["attempts"] == 2 and judgments[4]["status"] == "scored"
        reask = server.requests[requests_for(server, 4)[1]]["messages"]
        assert [m["role"] for m in reask] == ["user", "assistant", "user"]
        assert reask[1]["content"] == "It looks fine to me." and "could not read a score" in reask[2]["content"]
        assert judgments[9]["attempts"] == 2 and judgments[9]["status"] == "scored"

        # out of range three times: failed with the raw answer kept
        assert judgments[5]["attempts"] == 3 and judgments[5]["raw"] == "Reason: many errors\nScore: -3"
        assert "outside" in judgments[5]["error"]
        # request failures: failed after 1 + max_retries tries, reason recorded
        assert len(requests_for(server, 7)) == 4 and "HTTP 500" in judgments[7]["error"]
        assert judgments[6]["reason"] == "an unethical request."
        assert all(j["usage"]["prompt_tokens"] > 0 for i, j in enumerate(judgments) if i != 7)

        # re-run: only the item whose requests failed is asked again (and now succeeds)
        server.reset_counts()
        again = judge_items_sync(items, [FACTUALITY], settings)
        assert server.request_count == 1 and requests_for(server, 7) == [0]
        assert again[7]["factuality"]["status"] == "scored"
        assert [r for i, r in enumerate(again) if i != 7] == [r for i, r in enumerate(results) if i != 7]

        server.reset_counts()
        judge_items_sync(items, [FACTUALITY], settings)
        assert server.request_count == 0


def test_peak_concurrency_equals_the_limit_and_a_second_run_is_free(tmp_path: Path) -> None:
    answers = {"Count the number": "Reason: fine\nScore: 0", "Imagine an extremely": "Reason: good\nScore: 80"}

    six_in_flight = threading.Event()
    deadline = time.monotonic() + WAIT_S
    servers: list[LoopbackServer] = []

    def script(body: dict) -> Reply:
        # Hold every request until six are in flight at once: the peak is reached by the engine, not
        # by luck in how fast the client sends. (A limit below six would wait out the deadline and fail.)
        if servers[0].in_flight >= 6:
            six_in_flight.set()
        six_in_flight.wait(max(0.0, deadline - time.monotonic()))
        prompt = body["messages"][0]["content"]
        return Reply(text=next(text for start, text in answers.items() if prompt.startswith(start)), delay=0.05)

    items = make_items(30)
    with LoopbackServer(script) as server:
        servers.append(server)
        settings = config(server, tmp_path, concurrency=6)
        results = judge_items_sync(items, [FACTUALITY, HELPFULNESS], settings)
        assert server.peak_in_flight == 6
        assert server.request_count == 60
        assert all(r["factuality"]["score"] == 0.0 and r["helpfulness"]["score"] == 80.0 for r in results)
        assert all(list(r) == ["factuality", "helpfulness"] for r in results)

        server.reset_counts()
        assert judge_items_sync(items, [FACTUALITY, HELPFULNESS], settings) == results
        assert server.request_count == 0  # every answer from the cache: no request was waited on

        # a different judge model is a different cache key: asked again
        server.reset_counts()
        judge_items_sync(items[:3], [FACTUALITY], config(server, tmp_path, judge_model="other-model"))
        assert server.request_count == 3 and {b["model"] for b in server.requests} == {"other-model"}


def test_results_stream_to_the_callback_as_they_arrive(tmp_path: Path) -> None:
    """A slow item does not hold back the others' callbacks (so a caller can persist them)."""
    others_arrived = threading.Event()
    released_by_callbacks: list[bool] = []
    arrivals: list[int] = []

    def on_result(index: int, name: str, judgment: dict) -> None:
        arrivals.append(index)
        if set(arrivals) >= {1, 2, 3, 4}:
            others_arrived.set()

    def script(body: dict) -> Reply:
        if marker(0) in body["messages"][0]["content"]:
            # Item 0 is answered only once the other four reached the caller (or, if they were held
            # back, after WAIT_S: then the assertion below fails).
            released_by_callbacks.append(others_arrived.wait(WAIT_S))
            return Reply(text="Reason: slow\nScore: 2")
        return OK

    with LoopbackServer(script) as server:
        judge_items_sync(make_items(5), [FACTUALITY], config(server, tmp_path, timeout=WAIT_S + 30),
                         on_result=on_result)
    assert released_by_callbacks == [True]
    assert arrivals[-1] == 0 and sorted(arrivals) == [0, 1, 2, 3, 4]


def test_missing_key_and_base_url_says_how_to_fix_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(EFTEvalError) as error:
        judge_items_sync(make_items(1), [FACTUALITY], JudgeConfig(cache_path=tmp_path / "c.sqlite", progress=False))
    message = str(error.value)
    assert "OPENAI_API_KEY" in message and "--base-url" in message and "--backend local" in message
    assert "\n" not in message


def test_rejected_key_stops_the_run_with_a_clear_error(tmp_path: Path) -> None:
    with LoopbackServer(lambda body: Reply(text=None, status=401)) as server:
        with pytest.raises(EFTEvalError, match="API key"):
            judge_items_sync(make_items(8), [FACTUALITY], config(server, tmp_path))
        assert server.request_count <= 4  # stopped, not retried item after item


def test_async_api_runs_inside_an_existing_event_loop(tmp_path: Path) -> None:
    with LoopbackServer(lambda body: OK) as server:
        async def main() -> list:
            return await judge_items(make_items(3), [FACTUALITY], config(server, tmp_path))

        results = asyncio.run(main())
    assert [r["factuality"]["score"] for r in results] == [1.0, 1.0, 1.0]


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(retry, base=1.0, cap=60.0, rng=rng) for retry in range(5)]
    for retry, delay in enumerate(delays):
        assert 2**retry / 2 <= delay <= 2**retry  # "equal jitter": half fixed, half random
    assert len({round(d / 2**r, 6) for r, d in enumerate(delays)}) > 1  # jittered, not lock-step
    assert backoff_delay(0, base=1.0, cap=60.0, retry_after=7.0) == 7.0
    assert backoff_delay(0, base=1.0, cap=5.0, retry_after=70.0) == 70.0  # the server knows best
    assert backoff_delay(0, base=1.0, cap=5.0, retry_after=1e6) == 300.0
    assert backoff_delay(10, base=1.0, cap=8.0, rng=rng) <= 8.0


def test_a_killed_run_keeps_every_answer_it_received(tmp_path: Path) -> None:
    """Interrupt a run while one request hangs: the re-run asks only for that one."""
    script = ScriptByMarker({marker(0): [Hang(30)]}, default=OK)
    items = make_items(10)
    done: list[int] = []
    with LoopbackServer(script) as server:
        settings = config(server, tmp_path, timeout=60)

        async def interrupted() -> None:
            """Cancel the run (as Ctrl-C would) once the nine answerable items are in, item 0 still hanging."""
            run = asyncio.ensure_future(judge_items(items, [FACTUALITY], settings,
                                                    on_result=lambda i, name, j: done.append(i)))
            deadline = time.monotonic() + WAIT_S
            while len(done) < 9 and not run.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert not run.done(), "the run finished although item 0 hangs"
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run

        asyncio.run(interrupted())
        assert sorted(done) == list(range(1, 10))  # the others were handed over as they arrived

        server.reset_counts()
        results = judge_items_sync(items, [FACTUALITY], settings)
        assert server.request_count == 1 and requests_for(server, 0) == [0]
        assert all(r["factuality"]["status"] == "scored" for r in results)


def test_retry_after_header_forms() -> None:
    import email.utils
    import types

    def error(headers: dict[str, str]) -> object:
        return types.SimpleNamespace(response=types.SimpleNamespace(headers=headers))

    assert retry_after_seconds(error({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(error({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= (retry_after_seconds(error({"retry-after": in_a_minute})) or 0) <= 61
    assert retry_after_seconds(error({})) is None
    assert retry_after_seconds(ValueError("no response")) is None


def test_registering_the_commands_imports_neither_openai_nor_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, eft_eval.judging.commands, eft_eval.bench._judge, eft_eval.judging; "
            "print(sorted(m for m in ('openai', 'torch', 'transformers', 'httpx2', 'aiohttp') if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_models_that_refuse_max_tokens_get_max_completion_tokens(tmp_path: Path) -> None:
    refusal = ('{"error": {"message": "Unsupported parameter: \'max_tokens\' is not supported with this model. '
               'Use \'max_completion_tokens\' instead.", "type": "invalid_request_error"}}')

    def script(body: dict) -> Reply:
        return Reply(body=refusal, status=400) if "max_tokens" in body else OK

    with LoopbackServer(script) as server:
        results = judge_items_sync(make_items(3), [FACTUALITY], config(server, tmp_path))
    assert [r["factuality"]["status"] for r in results] == ["scored"] * 3
    answered = [body for body in server.requests if "max_tokens" not in body]
    assert len(answered) == 3 and all(body["max_completion_tokens"] == 512 for body in answered)
    assert len(server.requests) - len(answered) <= 3  # each refusal is learned from, not retried blindly
