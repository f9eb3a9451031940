"""A scriptable OpenAI-compatible chat-completions server on 127.0.0.1, for benchmarks and tests.

It speaks just enough of the protocol (`POST /v1/chat/completions`, `GET /v1/models`) for the
`openai` client, and a *script* decides what each request gets: an answer after a delay, an HTTP
error with headers (429 + Retry-After), a hang, or a dropped connection. It counts requests and the
peak number in flight, which is how tests check the client's concurrency limit and its cache.
Standard library only, so it starts in milliseconds.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import Self


@dataclass(frozen=True)
class Reply:
    """Answer after `delay` seconds: a chat completion with `text`, or `body` verbatim, with `status`."""

    text: str | None = "Reason: fine.\nScore: 1"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: str | None = None


@dataclass(frozen=True)
class Hang:
    """Hold the request `seconds` without answering, then close the connection."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


Action = Reply | Hang | Drop
Script = Callable[[dict[str, Any]], Action]


class ScriptByMarker:
    """Per-item scripts: the first marker found in the request's first user message picks a queue of
    actions, played in order (then `default`). Concurrency-safe: each action is used once."""

    def __init__(self, queues: dict[str, list[Action]], default: Action | Callable[[dict[str, Any]], Action]):
        self._queues = {marker: list(actions) for marker, actions in queues.items()}
        self._default = default
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Action:
        users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
        first = str(users[0]) if users else ""
        with self._lock:
            for marker, queue in self._queues.items():
                if marker in first and queue:
                    return queue.pop(0)
        return self._default(body) if callable(self._default) else self._default


class LoopbackServer:
    """`with LoopbackServer(script) as server:` then point the client at `server.base_url`."""

    def __init__(self, script: Script | None = None, latency: float = 0.0, api_key: str | None = None,
                 models_status: int = 200) -> None:
        self.script: Script = script or (lambda body: Reply())
        self.latency = latency
        # When set, every route answers 401 to a request without `Authorization: Bearer <api_key>`,
        # as OpenAI and `vllm serve --api-key` do (401s are not counted as requests).
        self.api_key = api_key
        # What `GET /v1/models` answers: 404 plays a server without the route, 403 a key that may
        # chat but not list models (OpenAI's restricted keys).
        self.models_status = models_status
        self.models_requests = 0
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.request_times: list[float] = []  # time.monotonic() at arrival, parallel to `requests`
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-openai", daemon=True)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.authorizations.clear()
            self.request_times.clear()
            self.peak_in_flight = 0

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging requests
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _enter(self, body: dict[str, Any], authorization: str) -> None:
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(authorization)
            self.request_times.append(time.monotonic())
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connect at once; the default backlog of 5 is too small

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or drop connections are part of the script, not server errors.
        import sys

        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _completion_body(body: dict[str, Any], text: str | None, number: int) -> str:
    prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    completion_tokens = len((text or "").split())
    return json.dumps({
        "id": f"chatcmpl-loopback-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "loopback"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })


def _handler_for(owner: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
        # Headers and body go out as two writes; with Nagle's algorithm the second waits for the
        # client's delayed ACK (~40 ms), which would swamp the latency being simulated.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own logs
            pass

        def _authorized(self) -> bool:
            if owner.api_key is None or self.headers.get("Authorization") == f"Bearer {owner.api_key}":
                return True
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error",
                     "code": "invalid_api_key"}
            self._send(401, json.dumps({"error": error}))
            return False

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/") == "/v1/models":
                with owner._lock:
                    owner.models_requests += 1
                if owner.models_status != 200:
                    error = {"message": f"scripted {owner.models_status}"}
                    self._send(owner.models_status, json.dumps({"error": error}))
                    return
                self._send(200, json.dumps({"object": "list", "data": [{"id": "loopback", "object": "model"}]}))
            else:
                self._send(404, json.dumps({"error": {"message": "not found"}}))

        def do_POST(self) -> None:
            if not self._authorized():
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))
                return
            owner._enter(body, self.headers.get("Authorization") or "")
            try:
                self._act(owner.script(body), body)
            finally:
                owner._leave()

        def _act(self, action: Action, body: dict[str, Any]) -> None:
            if isinstance(action, Drop):
                self._close()
                return
            if isinstance(action, Hang):
                owner._stopping.wait(action.seconds)
                self._close()
                return
            wait = owner.latency + action.delay
            if wait:
                owner._stopping.wait(wait)
            if action.body is not None:
                payload = action.body
            elif action.status == 200:
                payload = _completion_body(body, action.text, owner.request_count)
            else:
                payload = json.dumps({"error": {"message": f"scripted {action.status}", "type": "loopback"}})
            self._send(action.status, payload, action.headers)

        def _send(self, status: int, payload: str, headers: dict[str, str] | None = None) -> None:
            data = payload.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True  # the client gave up (timed out) first

        def _close(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return Handler
