"""`eft-eval serve` hardened, against a real uvicorn server on 127.0.0.1: the engine refuses
non-finite settings, a dead decoder thread fails its requests with 503 and `/health` says so,
request text must be valid Unicode and numbers finite JSON numbers of the right type, and bad
ports and bind errors are one line."""

from __future__ import annotations

import concurrent.futures
import errno
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from serve_helpers import ThreadServer, serve_in_thread, upscaled_spec

from eft_eval.cli import main
from eft_eval.errors import EFTEvalError
from eft_eval.testing import free_port

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def model(tiny_family: dict[str, Path]) -> Any:
    from eft_eval.models import EFTModel

    return EFTModel.from_spec(upscaled_spec(tiny_family))


@pytest.fixture(scope="module")
def server(model: Any) -> Iterator[ThreadServer]:
    with serve_in_thread(model, max_tokens=64, max_n=4) as running:
        yield running


def post(server: ThreadServer, raw: str | bytes, route: str = "chat/completions",
         timeout: float = 60) -> requests.Response:
    """Send `raw` as it is: Python's json would refuse to write NaN or a lone surrogate for us."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return requests.post(f"{server.v1}/{route}", data=data, headers={"content-type": "application/json"},
                         timeout=timeout)


def error_of(response: requests.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and "\n" not in error["message"]
    return dict(error)


# --- the engine refuses settings that hang or kill its thread ------------------------------------


@pytest.mark.parametrize(("settings", "expected"), [
    ({"batch_wait_s": float("nan")}, "batch_wait_s=nan is not a finite number"),
    ({"batch_wait_s": float("inf")}, "batch_wait_s=inf is not a finite number"),
    ({"batch_wait_s": -0.1}, "batch_wait_s=-0.1 is out of range"),
    ({"batch_wait_s": 1e9}, "batch_wait_s=1000000000.0 is out of range (expected a finite number >= 0 and <= 60)"),
    ({"max_batch_size": 0}, "max_batch_size=0 is out of range"),
    ({"max_batch_size": 2.5}, "max_batch_size=2.5 is not a whole number"),
    ({"speculative_block": -1}, "speculative_block=-1 is out of range"),
    ({"scheduling": "fifo"}, "scheduling='fifo' is not one of step, batch"),
    ({"max_prefill_tokens": 0}, "max_prefill_tokens=0 is out of range"),
    ({"max_waiting": -1}, "max_waiting=-1 is out of range"),
    ({"retry_after_s": float("nan")}, "retry_after_s=nan is not a finite number"),
])
def test_the_engine_refuses_settings_that_would_hang_or_kill_its_thread(model: Any, settings: dict[str, Any],
                                                                         expected: str) -> None:
    from eft_eval.serve import BatchEngine

    with pytest.raises(EFTEvalError) as caught:
        BatchEngine(model, **settings)
    assert str(caught.value).startswith("BatchEngine: ") and expected in str(caught.value), caught.value


# --- a decoder thread that dies -------------------------------------------------------------------


class DecoderCrash(BaseException):
    """Not an `Exception`: gets past the per-batch handler and ends the thread, as a real fault would."""


def test_a_decoder_thread_that_dies_mid_batch_fails_its_requests_and_health_says_so(model: Any) -> None:
    with serve_in_thread(model, max_tokens=64) as running:
        engine = running.engine

        def crash(*args: Any) -> None:
            raise DecoderCrash("injected fault")

        engine._decode = crash  # batch scheduling's batch
        engine._report_step = crash  # step scheduling's step
        body = json.dumps({"model": "eft", "max_tokens": 4, "messages": HI})
        started = time.monotonic()
        in_flight = error_of(post(running, body, timeout=30), 503)
        assert time.monotonic() - started < 20  # answered, not left waiting on a thread that is gone
        assert in_flight["type"] == "server_error" and "the decoder thread stopped (DecoderCrash: injected fault)" in \
            in_flight["message"]
        health = requests.get(f"{running.base_url}/health", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert "DecoderCrash: injected fault" in health.json()["error"]["message"]
        later = error_of(post(running, body, timeout=30), 503)
        assert later["code"] == "decoder_unavailable" and "restart the server" in later["message"]
        streamed = post(running, json.dumps({"model": "eft", "max_tokens": 4, "messages": HI, "stream": True}))
        assert streamed.status_code == 503


def test_a_wait_the_thread_cannot_make_fails_the_waiting_requests_instead_of_hanging(model: Any) -> None:
    """An infinite batch wait (set after the engine checked it) raises OverflowError in the thread's
    wait, as `--batch-wait-ms inf` did: requests waiting then got no answer and /health said 200."""
    with serve_in_thread(model, max_tokens=64) as running:
        running.engine.batch_wait_s = float("inf")
        body = json.dumps({"model": "eft", "max_tokens": 4, "messages": HI})
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: post(running, body, timeout=30), range(2)))
        for answer in answers:
            assert "the decoder thread stopped (OverflowError" in error_of(answer, 503)["message"]
        assert requests.get(f"{running.base_url}/health", timeout=10).status_code == 503


def test_health_is_ok_while_the_decoder_runs(server: ThreadServer) -> None:
    health = requests.get(f"{server.base_url}/health", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}


# --- request text and numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "route", "param", "surrogate"), [
    ('{"model": "eft", "max_tokens": 3, "messages": [{"role": "user", "content": "\\ud800"}]}',
     "chat/completions", "messages[0].content", "\\ud800"),
    (('{"model": "eft", "max_tokens": 3, "messages": [{"role": "system", "content": "ok"}, '
     '{"role": "user", "content": [{"type": "text", "text": "a\\udfffb"}]}]}'),
     "chat/completions", "messages[1].content[0].text", "\\udfff"),
    ('{"model": "eft", "max_tokens": 3, "prompt": ["fine", "x\\udc00"]}', "completions", "prompt[1]", "\\udc00"),
    ('{"model": "eft", "max_tokens": 3, "stop": "\\ud83d", "messages": [{"role": "user", "content": "hi"}]}',
     "chat/completions", "stop", "\\ud83d"),
])
def test_a_lone_surrogate_is_a_400_naming_the_field(server: ThreadServer, raw: str, route: str, param: str,
                                                      surrogate: str) -> None:
    error = error_of(post(server, raw, route))
    assert error["param"] == param and error["code"] == "invalid_unicode"
    assert error["message"].startswith(f"{param}: the text is not valid Unicode (a lone surrogate {surrogate}")


def test_a_surrogate_pair_is_one_character_and_fine(server: ThreadServer) -> None:
    raw = ('{"model": "eft", "max_tokens": 2, "temperature": 0, "messages": [{"role": "user", "content": '
           '"\\ud83d\\ude00"}]}')
    assert post(server, raw).status_code == 200


@pytest.mark.parametrize(("field", "literal"), [("top_p", "NaN"), ("temperature", "Infinity"),
                                                 ("presence_penalty", "-Infinity"), ("top_k", "NaN")])
def test_nan_and_infinity_literals_are_refused_naming_the_field(server: ThreadServer, field: str,
                                                                 literal: str) -> None:
    raw = (f'{{"model": "eft", "max_tokens": 3, "{field}": {literal}, "messages": [{{"role": "user", '
           f'"content": "hi"}}]}}')
    error = error_of(post(server, raw))
    assert (error["param"] == field
            and error["message"] == f"{field}: {literal} is not a JSON number; send a finite number")


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("temperature", "0.5", 'temperature: Input should be a valid number, got "0.5"'),
    ("max_tokens", True, "max_tokens: Input should be a valid integer, got true"),
    ("n", True, "n: Input should be a valid integer, got true"),
    ("stream", "false", 'stream: Input should be a valid boolean, got "false"'),
    ("ignore_eos", "no", 'ignore_eos: Input should be a valid boolean, got "no"'),
    ("logprobs", "yes", 'logprobs: Input should be a valid boolean, got "yes"'),
    ("seed", 1e300, "seed: Input should be a valid integer"),
    ("max_tokens", 1e300, "max_tokens: Input should be a valid integer"),
])
def test_a_value_of_the_wrong_json_type_is_refused_not_converted(server: ThreadServer, field: str, value: Any,
                                                                  expected: str) -> None:
    error = error_of(post(server, json.dumps({"model": "eft", "max_tokens": 3, "messages": HI, field: value})))
    assert error["param"] == field and error["message"].startswith(expected), error


def test_whole_numbers_and_ints_for_floats_still_work(server: ThreadServer) -> None:
    body = {"model": "eft", "max_tokens": 2, "temperature": 1, "top_p": 1, "seed": 3, "n": 2, "messages": HI}
    response = post(server, json.dumps(body))
    assert response.status_code == 200 and len(response.json()["choices"]) == 2


def test_too_many_stop_strings_are_refused(server: ThreadServer) -> None:
    from eft_eval.serve._schemas import MAX_STOP_STRINGS

    body = {"model": "eft", "max_tokens": 2, "messages": HI}
    ok = post(server, json.dumps({**body, "stop": [f"s{i}" for i in range(MAX_STOP_STRINGS)]}))
    assert ok.status_code == 200
    error = error_of(post(server, json.dumps({**body, "stop": ["x"] * 5000})))
    assert (error["param"] == "stop"
            and error["message"] == f"stop: 5000 stop strings; at most {MAX_STOP_STRINGS} are allowed")


# --- ports and binding ---------------------------------------------------------------------------


@pytest.mark.parametrize(("port", "expected"), [
    (99999, "serve: --port=99999 is out of range (expected a whole number >= 1 and <= 65535)"),
    (-1, "serve: --port=-1 is out of range"),
    (0, "serve: --port=0 is out of range"),
    ("80x", "serve: --port='80x' is not a whole number"),
])
def test_the_serve_library_refuses_a_bad_port(port: Any, expected: str) -> None:
    from eft_eval.serve.commands import check_port_free

    with pytest.raises(EFTEvalError) as caught:
        check_port_free("127.0.0.1", port)
    assert str(caught.value).startswith(expected), caught.value


def test_a_port_in_use_is_one_line_naming_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", "unused", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == (f"eft-eval: error: cannot listen on 127.0.0.1:{port}: Address already in use (another server "
                   "uses it: stop it or choose another --port)\n")


def test_a_privileged_port_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may run as root, where port 80 binds: the refusal is injected as the kernel gives it."""
    from eft_eval.serve.commands import check_port_free

    def refuse(self: socket.socket, address: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refuse)
    with pytest.raises(EFTEvalError, match=r"^cannot listen on 127\.0\.0\.1:80: Permission denied \(ports below 1024 "
                       r"need administrator rights: choose --port 1024 or above\)$"):
        check_port_free("127.0.0.1", 80)


def test_a_host_name_no_resolver_takes_is_one_line() -> None:
    from eft_eval.serve.commands import check_port_free

    with pytest.raises(EFTEvalError, match=r"^--host a{70}\.example: cannot resolve it"):
        check_port_free("a" * 70 + ".example", free_port())
