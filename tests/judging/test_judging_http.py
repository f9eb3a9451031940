"""The live judge client (judging/_http.py) against real HTTP servers on 127.0.0.1: what goes out
on the wire, proxies from the environment, errors in one line; and the two engine changes that
made it scale (one cache commit per event-loop turn, fewer young garbage collections)."""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from eft_eval.errors import EFTEvalError
from eft_eval.judging import JudgeConfig, JudgeItem, judge_items_sync, load_judges
from eft_eval.judging._cache import Completion, JudgeCache
from eft_eval.judging._engine import YOUNG_COLLECTION_EVERY
from eft_eval.testing import Hang, LoopbackServer, Reply

FACTUALITY = load_judges(["factuality"])[0]
ANSWER = "Reason: The response is accurate.\nScore: 0"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                   "no_proxy")


class Recorder:
    """A real HTTP server that answers every POST with one chat completion and keeps what it saw:
    the request target (absolute when the request came through it as a proxy), headers and body."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.seen: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                recorder.seen.append({"target": self.path, "headers": dict(self.headers), "body": body})
                data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}],
                                   "usage": {"prompt_tokens": 5, "completion_tokens": 7}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:  # (certificate, key): HTTPS
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    server = Recorder()
    yield server
    server.close()


def judge_one(base_url: str, tmp_path: Path, **settings: Any) -> dict[str, Any]:
    config = JudgeConfig(base_url=base_url, progress=False, cache_path=tmp_path / "cache.sqlite", **settings)
    return judge_items_sync([JudgeItem("What is 2+2?", "4.")], [FACTUALITY], config)[0]["factuality"]


def test_a_request_carries_what_openai_would_send(recorder: Recorder, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-123")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-456")
    judgment = judge_one(recorder.url + "/v1/", tmp_path, api_key="sk-test", judge_model="gpt-x")
    assert judgment["status"] == "scored" and judgment["score"] == 0
    assert judgment["usage"] == {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    [request] = recorder.seen
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert request["target"] == "/v1/chat/completions"  # one slash, whatever the base URL ended with
    assert headers["authorization"] == "Bearer sk-test" and headers["content-type"] == "application/json"
    assert headers["openai-organization"] == "org-123" and headers["openai-project"] == "proj-456"
    assert headers["user-agent"].startswith("eft-eval")
    assert request["body"]["model"] == "gpt-x" and request["body"]["messages"][-1]["role"] == "user"
    assert {key: request["body"][key] for key in FACTUALITY.sampling} == dict(FACTUALITY.sampling)


def test_a_query_in_the_base_url_stays_after_the_path(recorder: Recorder, tmp_path: Path) -> None:
    judge_one(recorder.url + "/openai/v1/?api-version=2024-06-01", tmp_path, api_key="k")
    assert recorder.seen[0]["target"] == "/openai/v1/chat/completions?api-version=2024-06-01"


def test_basic_auth_in_the_url_is_a_header_not_a_bearer_key(recorder: Recorder, tmp_path: Path) -> None:
    judge_one(recorder.url.replace("http://", "http://alice:s%40cret@") + "/v1", tmp_path, api_key="sk-test")
    headers = {name.lower(): value for name, value in recorder.seen[0]["headers"].items()}
    assert headers["authorization"] == "Basic YWxpY2U6c0BjcmV0"  # base64("alice:s@cret")


def test_the_environment_s_proxy_is_used_unless_no_proxy_exempts_the_host(
        recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Through the proxy: the proxy (our recorder) is asked for the absolute URL of a host that
    # does not resolve here, so the answer can only have come through it.
    monkeypatch.setenv("HTTP_PROXY", recorder.url)
    assert judge_one("http://judge.invalid/v1", tmp_path, api_key="k")["status"] == "scored"
    assert recorder.seen[-1]["target"] == "http://judge.invalid/v1/chat/completions"
    # Written without a scheme, as many set it: http:// is meant.
    monkeypatch.setenv("HTTP_PROXY", recorder.url.removeprefix("http://"))
    assert judge_one("http://judge.invalid/v1", tmp_path / "bare", api_key="k")["status"] == "scored"
    assert recorder.seen[-1]["target"] == "http://judge.invalid/v1/chat/completions"
    # NO_PROXY: straight to the server, the proxy (now a closed port) never asked.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert judge_one(recorder.url + "/v1", tmp_path / "direct", api_key="k")["status"] == "scored"
    assert recorder.seen[-1]["target"] == "/v1/chat/completions"
    # A proxy URL that cannot be used stops the run with one line naming it (no retry could help).
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp:notaport")
    asked = len(recorder.seen)
    with pytest.raises(EFTEvalError, match=r"http://proxy\.corp:notaport is not a usable URL .*\*_PROXY"):
        judge_one(recorder.url + "/v1", tmp_path / "bad", api_key="k", max_retries=3)
    assert len(recorder.seen) == asked


def test_a_private_certificate_authority_is_trusted_through_ssl_cert_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(certificate), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server = Recorder(tls=(certificate, key))
    try:
        # Not trusted: one line saying what to do, at the first request (no retries: none could help).
        with pytest.raises(EFTEvalError, match=r"cannot verify the judge server's certificate at https://127\.0\.0\.1"
                                               r".*point SSL_CERT_FILE at its certificate"):
            judge_one(server.url + "/v1", tmp_path / "untrusted", api_key="k", max_retries=3)
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
        assert judge_one(server.url + "/v1", tmp_path / "trusted", api_key="k")["status"] == "scored"
        assert len(server.seen) == 1
    finally:
        server.close()


def test_failures_read_as_one_line_with_the_server_s_words(tmp_path: Path) -> None:
    refusal = Reply(status=400, body=json.dumps({"error": {"message": "prompt is too long", "type": "invalid"}}))
    with LoopbackServer(lambda body: refusal) as server:
        judgment = judge_one(server.base_url, tmp_path, api_key="k", max_retries=3)
    assert judgment["status"] == "failed" and server.request_count == 1  # a 400 is not retried
    assert judgment["error"] == "HTTP 400 Bad Request: prompt is too long (after 1 try)"
    with LoopbackServer(lambda body: Hang(30)) as server:
        judgment = judge_one(server.base_url, tmp_path / "hang", api_key="k", timeout=0.3, max_retries=1,
                             backoff_base=0.01, backoff_max=0.01)
    assert judgment["status"] == "failed" and server.request_count == 2  # a timeout is retried
    assert judgment["error"] == "ConnectionFailure: no answer within 0.3 s (--timeout) (after 2 tries)"


def test_answers_are_committed_at_the_end_of_the_loop_turn_that_received_them(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = JudgeCache(path)
    reader = sqlite3.connect(path)

    def stored() -> int:
        return int(reader.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    answer = Completion(text=ANSWER, usage={"prompt_tokens": 1}, model="m")

    async def two_answers_in_one_turn() -> list[int]:
        cache.put("a", answer)
        cache.put("b", answer)
        before = stored()  # not yet: one commit for both, when the turn ends
        await asyncio.sleep(0)
        return [before, stored()]

    assert asyncio.run(two_answers_in_one_turn()) == [0, 2]
    cache.put("c", answer)  # outside an event loop: committed at once
    assert stored() == 3

    async def put_then_close() -> None:
        cache.put("d", answer)
        cache.close()  # close commits what the turn had not yet

    asyncio.run(put_then_close())  # the turn's scheduled commit finds the cache closed: no error
    assert stored() == 4
    reader.close()


def test_young_collections_are_rarer_while_judging_and_restored_after(tmp_path: Path) -> None:
    seen: list[int] = []
    before = gc.get_threshold()
    with LoopbackServer(lambda body: Reply(text=ANSWER)) as server:
        config = JudgeConfig(base_url=server.base_url, api_key="k", progress=False, cache_path=None)
        judge_items_sync([JudgeItem("q", f"r{i}") for i in range(3)], [FACTUALITY], config,
                         on_result=lambda *_: seen.append(gc.get_threshold()[0]))
    assert seen and all(threshold >= YOUNG_COLLECTION_EVERY for threshold in seen)
    assert gc.get_threshold() == before
