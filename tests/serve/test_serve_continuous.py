"""Continuous batching (`--scheduling step`): requests join the running batch at the next step and
leave it when they end, whatever their settings, and each still gets what `EFTModel.generate`
gives it; the waiting queue is bounded (429 + Retry-After); `/metrics` speaks Prometheus."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from serve_helpers import ThreadServer, serve_in_thread, upscaled_spec

QUERIES = ["Why is the sky blue?", "How do I bake bread?", "What is the capital of France?", "Tell me a joke.",
           "Hi", "Explain like I'm five: how do plants make food?"]


@pytest.fixture(scope="module")
def model(tiny_family: dict[str, Path]) -> Any:
    from eft_eval.models import EFTModel

    return EFTModel.from_spec(upscaled_spec(tiny_family))


@pytest.fixture(scope="module")
def server(model: Any) -> Iterator[ThreadServer]:
    with serve_in_thread(model, max_tokens=1000, max_n=4) as running:
        yield running


def _generate_ignoring_eos(model: Any, query: str, **settings: Any) -> Any:
    model.eos_token_ids, eos = set(), model.eos_token_ids
    try:
        return model.generate([query], **settings)[0]
    finally:
        model.eos_token_ids = eos


def _stream(url: str, body: dict[str, Any], times: list[float], texts: list[str]) -> None:
    """Stream a chat completion; `times` gets each content chunk's arrival, `texts` the whole text."""
    pieces = []
    with requests.post(url, json={**body, "stream": True}, stream=True, timeout=120) as response:
        for line in response.iter_lines(decode_unicode=True):
            if not line or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
            if content:
                times.append(time.monotonic())
                pieces.append(content)
    texts.append("".join(pieces))


def test_a_request_arriving_during_a_long_decode_starts_before_it_ends(server: ThreadServer, model: Any) -> None:
    """Under batch scheduling the late request waits for the long one's 300 steps; here it joins
    at the next step, its first token comes before the long one's last, and both equal `generate`."""
    url = server.v1 + "/chat/completions"
    long_body = {"model": "eft", "messages": [{"role": "user", "content": QUERIES[0]}], "max_tokens": 300,
                 "temperature": 0.9, "seed": 1, "ignore_eos": True}
    late_body = {"model": "eft", "messages": [{"role": "user", "content": QUERIES[1]}], "max_tokens": 8,
                 "temperature": 0, "ignore_eos": True}
    long_times: list[float] = []
    long_text: list[str] = []
    late_times: list[float] = []
    late_text: list[str] = []
    batches_before = server.engine.batches
    runner = threading.Thread(target=_stream, args=(url, long_body, long_times, long_text))
    runner.start()
    deadline = time.monotonic() + 60
    while len(long_times) < 5:  # the long decode is running
        assert time.monotonic() < deadline and runner.is_alive()
        time.sleep(0.005)
    _stream(url, late_body, late_times, late_text)
    runner.join(120)
    assert late_times[0] < long_times[-1]  # it did not wait for the long decode
    assert late_times[-1] < long_times[-1]  # it even finished first, and left
    assert server.engine.batches - batches_before == 1  # it joined the running batch
    assert late_text[0] == _generate_ignoring_eos(model, QUERIES[1], max_new_tokens=8).text
    assert long_text[0] == _generate_ignoring_eos(model, QUERIES[0], max_new_tokens=300, do_sample=True,
                                                  temperature=0.9, seed=1).text


MIXED: list[dict[str, Any]] = [
    {"max_tokens": 12, "temperature": 0},
    {"max_tokens": 9, "temperature": 0.8, "top_p": 0.9, "seed": 3},
    {"max_tokens": 20, "temperature": 1.3, "top_k": 5, "seed": 11},
    {"max_tokens": 5, "temperature": 0.6, "seed": 4, "n": 2},
    {"max_tokens": 16, "temperature": 0, "stop": ["e"]},
    {"max_tokens": 14, "temperature": 1.0, "top_p": 0.5, "top_k": 20, "seed": 7, "stop": ["a", "zz"]},
]


def _generate_kwargs(settings: dict[str, Any], choice: int) -> dict[str, Any]:
    temperature = settings["temperature"]
    return {"max_new_tokens": settings["max_tokens"], "do_sample": temperature > 0,
            "temperature": temperature or 1.0, "top_p": settings.get("top_p", 1.0), "top_k": settings.get("top_k", 0),
            "seed": settings.get("seed", 0) + choice, "stop": settings.get("stop", ())}


def test_requests_with_mixed_settings_share_one_batch_and_each_equals_generate(server: ThreadServer,
                                                                              model: Any) -> None:
    async def ask_all() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=server.v1, api_key="unused", max_retries=0) as aclient:
            return list(await asyncio.gather(*(
                aclient.chat.completions.create(
                    model="eft", messages=[{"role": "user", "content": q}],
                    **{k: v for k, v in settings.items() if k != "top_k"},
                    extra_body={"top_k": settings["top_k"]} if "top_k" in settings else None)
                for q, settings in zip(QUERIES, MIXED))))

    batches_before, rows_before = server.engine.batches, server.engine.rows
    responses = asyncio.run(ask_all())
    got = [[c.message.content for c in r.choices] for r in responses]
    expected = [[model.generate([q], **_generate_kwargs(settings, i))[0].text for i in range(settings.get("n", 1))]
                for q, settings in zip(QUERIES, MIXED)]
    assert got == expected
    assert server.engine.batches - batches_before == 1  # 7 rows, 6 different settings: one running batch
    assert server.engine.rows - rows_before == 7


def test_waiting_rows_are_served_in_arrival_order_within_the_prefill_budget(model: Any) -> None:
    """One row at a time (`max_batch_size=1`): rows start in the order they were submitted. A prefill
    budget of one token lets one row join per step, and the rows still equal `generate`."""
    from eft_eval.models import SamplingConfig, prompt_key
    from eft_eval.serve import BatchEngine, Row
    from eft_eval.serve._engine import DoneEvent

    def run(engine: BatchEngine) -> list[tuple[int, str]]:
        done: list[tuple[int, str]] = []
        finished = threading.Semaphore(0)

        def sink_for(index: int) -> Any:
            def sink(event: Any) -> None:
                if isinstance(event, DoneEvent):
                    done.append((index, event.generation.text))
                    finished.release()
            return sink

        rows = [Row(engine.encode(q), prompt_key(q), SamplingConfig(max_new_tokens=4), sink_for(i))
                for i, q in enumerate(QUERIES)]
        engine.start()
        try:
            for row in rows:  # one by one: six arrivals
                engine.submit([row])
            for _ in rows:
                assert finished.acquire(timeout=60)
        finally:
            engine.stop(30)
        return done

    expected = [g.text for g in model.generate(QUERIES, max_new_tokens=4)]
    in_turn = run(BatchEngine(model, max_batch_size=1, batch_wait_s=0))
    assert in_turn == list(enumerate(expected))
    budget = BatchEngine(model, max_batch_size=8, max_prefill_tokens=1, batch_wait_s=0.2)
    trickled = run(budget)
    assert sorted(trickled) == list(enumerate(expected))
    assert budget.largest_batch > 1 and budget.batches == 1  # rows joined one a step, never waited for a batch


def test_a_full_waiting_queue_answers_429_with_retry_after(model: Any) -> None:
    with serve_in_thread(model, max_tokens=2000, max_batch_size=1, max_waiting=2, retry_after_s=3) as busy:
        url = busy.v1 + "/chat/completions"
        long_body = {"model": "eft", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2000,
                     "ignore_eos": True, "stream": True}
        short = {"model": "eft", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        with requests.post(url, json=long_body, stream=True, timeout=60) as running:
            lines = (line for line in running.iter_lines(decode_unicode=True) if line)
            next(lines), next(lines)  # decoding: the one batch row is taken
            waiting = [threading.Thread(target=requests.post, args=(url,), kwargs={"json": short, "timeout": 120})
                       for _ in range(2)]
            for thread in waiting:
                thread.start()
            deadline = time.monotonic() + 30
            while busy.engine.waiting < 2:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            refused = requests.post(url, json=short, timeout=30)
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "3"
            error = refused.json()["error"]
            assert error["code"] == "queue_full" and "--max-waiting 2" in error["message"]
            with pytest.raises(openai.RateLimitError):
                openai.OpenAI(base_url=busy.v1, api_key="unused", max_retries=0).chat.completions.create(
                    model="eft", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
        # The long stream is closed: it leaves, the waiting rows run, and the queue takes rows again.
        for thread in waiting:
            thread.join(60)
        assert requests.post(url, json=short, timeout=60).status_code == 200


def test_metrics_parse_as_prometheus_text(server: ThreadServer) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    client = openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)
    responses = [client.chat.completions.create(model="eft", messages=[{"role": "user", "content": q}], max_tokens=6,
                                                temperature=0) for q in QUERIES[:3]]
    response = requests.get(server.base_url + "/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert {"eft_serve_requests", "eft_serve_rows", "eft_serve_rows_rejected", "eft_serve_prompt_tokens",
            "eft_serve_generation_tokens", "eft_serve_running_rows", "eft_serve_waiting_rows",
            "eft_serve_batch_occupancy_rows", "eft_serve_time_to_first_token_seconds",
            "eft_serve_time_per_output_token_seconds", "eft_serve_row_latency_seconds"} <= set(families)

    def value(family: str, sample: str, **labels: str) -> float:
        return sum(s.value for s in families[family].samples
                   if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))

    assert families["eft_serve_time_to_first_token_seconds"].type == "histogram"
    assert value("eft_serve_requests", "eft_serve_requests_total", route="/v1/chat/completions", status="200") >= 3
    rows_ended = value("eft_serve_rows", "eft_serve_rows_total")
    assert value("eft_serve_time_to_first_token_seconds", "eft_serve_time_to_first_token_seconds_count") == rows_ended
    assert value("eft_serve_generation_tokens", "eft_serve_generation_tokens_total") >= sum(
        r.usage.completion_tokens for r in responses)
    assert value("eft_serve_running_rows", "eft_serve_running_rows") == 0
    assert value("eft_serve_waiting_rows", "eft_serve_waiting_rows") == 0
