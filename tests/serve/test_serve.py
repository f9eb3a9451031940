"""`eft-eval serve` through real clients over loopback: the `openai` package (sync, async, streaming)
and raw HTTP for the error cases. Every answer is checked against `EFTModel.generate` / `score`."""

from __future__ import annotations

import asyncio
import json
import socket
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


@pytest.fixture(scope="module", params=["step", "batch"])
def server(model: Any, request: pytest.FixtureRequest) -> Iterator[ThreadServer]:
    """Every test that uses it runs against both schedulings: they must answer alike."""
    with serve_in_thread(model, max_tokens=64, max_n=4, max_body_bytes=20_000, scheduling=request.param) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ThreadServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)


def chat(client: openai.OpenAI, query: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(model="eft", messages=[{"role": "user", "content": query}], **kwargs)


# -- what the model says ---------------------------------------------------------------------------


def test_greedy_chat_equals_generate(client: openai.OpenAI, model: Any) -> None:
    response = chat(client, QUERIES[0], max_tokens=12, temperature=0)
    [expected] = model.generate([QUERIES[0]], max_new_tokens=12)
    choice = response.choices[0]
    assert choice.message.content == expected.text
    assert choice.finish_reason == {"eos": "stop", "stop": "stop", "length": "length"}[expected.finish_reason]
    assert response.model == "eft"
    assert response.usage.completion_tokens == len(expected.token_ids)
    lead = model.component_for("ft")
    assert response.usage.prompt_tokens == len(lead.encode(QUERIES[0]))


def test_seeded_samples_equal_generate_and_choice_i_uses_seed_plus_i(client: openai.OpenAI, model: Any) -> None:
    response = chat(client, QUERIES[1], max_tokens=10, temperature=0.8, top_p=0.9, seed=7, n=2)
    expected = [
        model.generate([QUERIES[1]], max_new_tokens=10, do_sample=True, temperature=0.8, top_p=0.9, seed=seed)[0].text
        for seed in (7, 8)
    ]
    assert [c.message.content for c in response.choices] == expected
    assert expected[0] != expected[1]  # different seeds, different samples: the test can tell them apart


def test_a_conversation_is_rendered_per_component_as_generate_does(client: openai.OpenAI, model: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": QUERIES[2]}]
    response = client.chat.completions.create(model="eft", messages=messages, max_tokens=8, temperature=0)
    [expected] = model.generate([messages], max_new_tokens=8)
    assert response.choices[0].message.content == expected.text


def test_stop_strings_cut_the_answer_as_generate_does(client: openai.OpenAI, model: Any) -> None:
    [free] = model.generate([QUERIES[3]], max_new_tokens=16)
    stop = free.text[3:5]  # a string the answer is known to contain
    response = chat(client, QUERIES[3], max_tokens=16, temperature=0, stop=[stop])
    [expected] = model.generate([QUERIES[3]], max_new_tokens=16, stop=[stop])
    assert response.choices[0].message.content == expected.text == free.text[: free.text.index(stop)]
    assert response.choices[0].finish_reason == "stop"


def test_logprobs_are_the_eft_models_scores(client: openai.OpenAI, model: Any) -> None:
    response = chat(client, QUERIES[4], max_tokens=8, temperature=0, logprobs=True, top_logprobs=3)
    [generation] = model.generate([QUERIES[4]], max_new_tokens=8)
    [score] = model.score([QUERIES[4]], [generation.token_ids])
    content = response.choices[0].logprobs.content
    assert len(content) == len(generation.token_ids) == len(score.token_logprobs)
    for entry, token_id, expected in zip(content, generation.token_ids, score.token_logprobs):
        assert abs(entry.logprob - expected) < 1e-5
        assert entry.token == model.tokenizer.decode([token_id])
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)  # greedy: the chosen one is top
        tops = [t.logprob for t in entry.top_logprobs]
        assert tops == sorted(tops, reverse=True)
    # Each token's own bytes (not its text's, which is U+FFFD for part of a character) rebuild the answer.
    rebuilt = bytes(b for entry in content for b in entry.bytes).decode("utf-8", errors="replace")
    assert rebuilt == response.choices[0].message.content


def test_text_completions_continue_the_prompt_verbatim(client: openai.OpenAI, model: Any) -> None:
    prompt = "The quick brown fox"
    response = client.completions.create(model="eft", prompt=prompt, max_tokens=6, temperature=0, logprobs=2)
    [expected] = model.generate([prompt], max_new_tokens=6, raw=True)
    [score] = model.score([prompt], [expected.token_ids], raw=True)
    choice = response.choices[0]
    assert choice.text == expected.text
    assert max(abs(a - b) for a, b in zip(choice.logprobs.token_logprobs, score.token_logprobs)) < 1e-5
    assert all(len(top) == 2 for top in choice.logprobs.top_logprobs)


def test_streamed_text_completions_of_several_prompts_and_choices(client: openai.OpenAI, model: Any) -> None:
    prompts = ["The quick brown fox", "Paris is the capital of"]
    chunks = list(client.completions.create(model="eft", prompt=prompts, n=2, max_tokens=5, temperature=0.9, seed=11,
                                            stream=True))
    texts = ["", "", "", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.text
    expected = [model.generate([p], max_new_tokens=5, raw=True, do_sample=True, temperature=0.9, seed=seed)[0].text
                for p in prompts for seed in (11, 12)]
    assert texts == expected


def test_streaming_deltas_add_up_to_generate_with_usage_last(client: openai.OpenAI, model: Any) -> None:
    [expected] = model.generate([QUERIES[5]], max_new_tokens=20)
    stop = expected.text[6:8]
    [stopped] = model.generate([QUERIES[5]], max_new_tokens=20, stop=[stop])
    chunks = list(chat(client, QUERIES[5], max_tokens=20, temperature=0, stream=True, stop=[stop],
                       stream_options={"include_usage": True}))
    content = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(content) == stopped.text  # the stop string was never streamed
    assert sum(1 for piece in content if piece) > 1  # it really came in pieces
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(stopped.token_ids)


def test_streamed_logprobs_match_the_non_streamed_ones(client: openai.OpenAI) -> None:
    plain = chat(client, QUERIES[0], max_tokens=6, temperature=0, logprobs=True)
    chunks = list(chat(client, QUERIES[0], max_tokens=6, temperature=0, logprobs=True, stream=True))
    streamed = [e.logprob for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert streamed == pytest.approx([e.logprob for e in plain.choices[0].logprobs.content], abs=1e-6)


def test_concurrent_async_requests_are_batched_and_each_equals_generate(server: ThreadServer, model: Any) -> None:
    async def ask_all() -> list[str]:
        async with openai.AsyncOpenAI(base_url=server.v1, api_key="unused", max_retries=0) as aclient:
            responses = await asyncio.gather(*(
                aclient.chat.completions.create(model="eft", messages=[{"role": "user", "content": q}],
                                                max_tokens=10, temperature=0.7, seed=3)
                for q in QUERIES
            ))
        return [r.choices[0].message.content or "" for r in responses]

    batches_before = server.engine.batches
    texts = asyncio.run(ask_all())
    expected = model.generate(QUERIES, max_new_tokens=10, do_sample=True, temperature=0.7, seed=3)
    assert texts == [g.text for g in expected]
    assert server.engine.batches - batches_before < len(QUERIES)  # requests shared batches
    assert server.engine.largest_batch > 1


def test_sampled_choices_and_requests_with_different_seeds_share_a_batch(server: ThreadServer, model: Any) -> None:
    """`n` choices (seed + i) and requests with their own seeds decode together, each as `generate`
    with its seed would: randomness is per (seed, prompt, step), not per batch."""
    seeds = [5, 21, 8, 13, 2, 34]

    async def ask_all() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=server.v1, api_key="unused", max_retries=0) as aclient:
            return list(await asyncio.gather(*(
                aclient.chat.completions.create(model="eft", messages=[{"role": "user", "content": q}],
                                                max_tokens=8, temperature=0.9, seed=seed, n=2)
                for q, seed in zip(QUERIES, seeds)
            )))

    batches_before = server.engine.batches
    responses = asyncio.run(ask_all())
    batches = server.engine.batches - batches_before
    expected = [[model.generate([q], max_new_tokens=8, do_sample=True, temperature=0.9, seed=seed + i)[0].text
                 for i in range(2)] for q, seed in zip(QUERIES, seeds)]
    assert [[c.message.content for c in r.choices] for r in responses] == expected
    assert batches < len(QUERIES)  # 12 rows with 12 seeds: before, 12 batches of one


def test_requests_with_different_lengths_and_greedy_seeds_share_a_batch(server: ThreadServer, model: Any) -> None:
    """Each row ends at its own max_tokens inside a longer batch; a seed does not split greedy rows."""
    lengths = [3, 9, 5, 12, 1, 7]

    async def ask_all() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=server.v1, api_key="unused", max_retries=0) as aclient:
            return list(await asyncio.gather(*(
                aclient.chat.completions.create(model="eft", messages=[{"role": "user", "content": q}],
                                                max_tokens=n, temperature=0, seed=i, extra_body={"ignore_eos": True})
                for i, (q, n) in enumerate(zip(QUERIES, lengths))
            )))

    batches_before = server.engine.batches
    responses = asyncio.run(ask_all())
    model.eos_token_ids, eos = set(), model.eos_token_ids
    try:
        expected = [model.generate([q], max_new_tokens=n)[0] for q, n in zip(QUERIES, lengths)]
    finally:
        model.eos_token_ids = eos
    assert [r.choices[0].message.content for r in responses] == [g.text for g in expected]
    assert [r.usage.completion_tokens for r in responses] == lengths
    assert all(r.choices[0].finish_reason == "length" for r in responses)
    assert server.engine.batches - batches_before < len(QUERIES)


def test_requests_with_different_stop_strings_share_a_batch(server: ThreadServer, model: Any) -> None:
    free = model.generate(QUERIES, max_new_tokens=16)
    stops = [[g.text[4:6]] if i % 2 else [g.text[2:3], "zz"] for i, g in enumerate(free)]  # strings that occur

    async def ask_all() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=server.v1, api_key="unused", max_retries=0) as aclient:
            return list(await asyncio.gather(*(
                aclient.chat.completions.create(model="eft", messages=[{"role": "user", "content": q}],
                                                max_tokens=16, temperature=0, stop=stop)
                for q, stop in zip(QUERIES, stops)
            )))

    batches_before = server.engine.batches
    responses = asyncio.run(ask_all())
    expected = [model.generate([q], max_new_tokens=16, stop=stop)[0] for q, stop in zip(QUERIES, stops)]
    assert [r.choices[0].message.content for r in responses] == [g.text for g in expected]
    assert all(g.finish_reason == "stop" for g in expected)
    assert [r.usage.completion_tokens for r in responses] == [len(g.token_ids) for g in expected]
    assert server.engine.batches - batches_before < len(QUERIES)


def test_models_and_health(server: ThreadServer, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["eft"]
    assert requests.get(f"{server.base_url}/health").json() == {"status": "ok"}


# -- refusals --------------------------------------------------------------------------------------


def post(server: ThreadServer, body: Any, path: str = "/chat/completions", **kwargs: Any) -> requests.Response:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(server.v1 + path, data=content, headers={"content-type": "application/json"}, timeout=30,
                         **kwargs)


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])
    assert "\n" not in body["error"]["message"] and "Traceback" not in body["error"]["message"]
    return dict(body["error"])


GOOD = {"model": "eft", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


@pytest.mark.parametrize(("body", "named"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ("[" * 10_000 + "]" * 10_000, "not valid JSON"),
    ({"model": "eft"}, "messages"),
    ({**GOOD, "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({**GOOD, "temperature": 3}, "temperature"),
    ({**GOOD, "max_tokens": 65}, "limit of 64 (--max-tokens-limit)"),
    ({**GOOD, "max_completion_tokens": 100}, "max_completion_tokens 100 is over"),
    ({**GOOD, "n": 5}, "limit of 4 (--max-n)"),
    ({**GOOD, "presence_penalty": 0.5}, "unsupported parameter 'presence_penalty'"),
    ({**GOOD, "tools": [{"type": "function"}]}, "unsupported parameter 'tools'"),
    ({**GOOD, "top_logprobs": 2}, "top_logprobs needs logprobs"),
    ({**GOOD, "stop": [""]}, "stop"),
    ({**GOOD, "messages": [{"role": "user", "content": "x " * 3000}]}, "over the model's context of 2048 tokens"),
])
def test_bad_requests_are_one_line_400s_naming_the_problem(server: ThreadServer, body: Any, named: str) -> None:
    response = post(server, body)
    assert response.status_code == 400
    assert named in error_of(response)["message"]


def test_neutral_defaults_of_unsupported_parameters_are_accepted(server: ThreadServer) -> None:
    response = post(server, {**GOOD, "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {}, "tools": None})
    assert response.status_code == 200, response.text


def test_body_size_unknown_model_and_route(server: ThreadServer) -> None:
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * 30_000}]}
    response = post(server, big)
    assert response.status_code == 400 and "limit of 20000 bytes (--max-body-bytes)" in error_of(response)["message"]
    response = post(server, {**GOOD, "model": "gpt-4"})
    assert response.status_code == 404 and error_of(response)["code"] == "model_not_found"
    response = requests.get(server.v1 + "/nothing")
    assert response.status_code == 404 and error_of(response)["type"] == "not_found_error"


def test_openai_client_sees_a_bad_request_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="frequency_penalty"):
        chat(client, "Hi", max_tokens=2, frequency_penalty=1.0)


def test_api_key_is_required_and_checked(model: Any, caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-test-0123456789"
    with serve_in_thread(model, api_key=key) as keyed:
        for wrong in ("nope", None):
            headers = {"authorization": f"Bearer {wrong}"} if wrong else {}
            response = requests.post(keyed.v1 + "/chat/completions", json=GOOD, headers=headers, timeout=30)
            assert response.status_code == 401 and error_of(response)["code"] == "invalid_api_key"
            assert key not in response.text
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=keyed.v1, api_key="wrong", max_retries=0).models.list()
        good = openai.OpenAI(base_url=keyed.v1, api_key=key, max_retries=0)
        assert chat(good, "Hi", max_tokens=2).choices[0].message.content is not None
        assert requests.get(keyed.base_url + "/health").status_code == 200  # health needs no key
    assert key not in caplog.text


# -- disconnects -----------------------------------------------------------------------------------


def _wait_for(condition: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("speculative_block", [0, 3])
def test_a_client_that_disconnects_mid_stream_cancels_its_row(model: Any, speculative_block: int) -> None:
    with serve_in_thread(model, max_tokens=2000, speculative_block=speculative_block) as long_server:
        engine = long_server.engine
        body = {**GOOD, "max_tokens": 2000, "ignore_eos": True, "stream": True}
        started = time.monotonic()
        with requests.post(long_server.v1 + "/chat/completions", json=body, timeout=30, stream=True) as response:
            lines = (line for line in response.iter_lines(decode_unicode=True) if line)
            assert next(lines).startswith("data: ")  # the role chunk
            assert next(lines).startswith("data: ")  # a token: decoding has started
        # The connection is closed here; 2000 tokens would take far longer than the wait below.
        _wait_for(lambda: engine.finished == {"cancelled": 1})
        assert time.monotonic() - started < 20


def test_a_non_streaming_client_that_goes_away_cancels_its_row(model: Any) -> None:
    with serve_in_thread(model, max_tokens=2000) as long_server:
        engine = long_server.engine
        body = json.dumps({**GOOD, "max_tokens": 2000, "ignore_eos": True}).encode()
        port = int(long_server.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            _wait_for(lambda: engine.batches >= 1)  # the row is being decoded
        _wait_for(lambda: engine.finished == {"cancelled": 1})


# -- speculative decoding --------------------------------------------------------------------------


def test_speculative_serving_streams_the_same_tokens_and_logprobs(model: Any) -> None:
    """`--speculative-block K` (exact mode): the same text as plain `generate`, streamed token by token
    with the EFT log-probs `score` gives; requests still share batches."""
    with serve_in_thread(model, speculative_block=3) as spec_server:
        spec_client = openai.OpenAI(base_url=spec_server.v1, api_key="unused", max_retries=0)
        chunks = list(chat(spec_client, QUERIES[0], max_tokens=12, temperature=0.9, seed=4, logprobs=True,
                           stream=True))
        [expected] = model.generate([QUERIES[0]], max_new_tokens=12, do_sample=True, temperature=0.9, seed=4)
        [score] = model.score([QUERIES[0]], [expected.token_ids])
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        logprobs = [e.logprob for c in chunks if c.choices
                    and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
        assert text == expected.text
        assert logprobs == pytest.approx(score.token_logprobs, abs=1e-5)

        async def ask_all() -> list[str]:
            async with openai.AsyncOpenAI(base_url=spec_server.v1, api_key="unused", max_retries=0) as aclient:
                responses = await asyncio.gather(*(
                    aclient.chat.completions.create(model="eft", messages=[{"role": "user", "content": q}],
                                                    max_tokens=10, temperature=0)
                    for q in QUERIES
                ))
            return [r.choices[0].message.content or "" for r in responses]

        assert asyncio.run(ask_all()) == [g.text for g in model.generate(QUERIES, max_new_tokens=10)]
        assert spec_server.engine.largest_batch > 1
