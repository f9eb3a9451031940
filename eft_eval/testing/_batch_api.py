"""A loopback fake of OpenAI's Batch API (and chat completions), standing in for OpenAI's servers.

Routes, with the real response shapes (openai.types.Batch, FileObject, the batch output/error line
format): `POST /v1/files` (multipart, purpose=batch), `GET /v1/files/{id}/content`,
`POST /v1/batches`, `GET /v1/batches/{id}`, `GET /v1/batches`, `POST /v1/batches/{id}/cancel`,
and `POST /v1/chat/completions` for live requests. Every answer comes from `answer(body)`, the same
function for live and batch requests, so a batch run and a live run can be compared line by line.

A batch advances one step per `GET /v1/batches/{id}`: validating, then in_progress (answering
`per_poll` requests per poll), finalizing, completed. Fault injection:
- `line_error(body)` returning an error dict makes that request a per-line error (error file);
- `refuse="message"`: every batch fails validation (status `failed`, `errors.data`);
- `expire_after_polls=N`: after N in_progress polls the batch expires; requests not yet answered
  come back in the error file with code `batch_expired`, as OpenAI documents.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import Self

Answer = Callable[[dict[str, Any]], str]
LineError = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def _completion(body: dict[str, Any], text: str, number: int) -> dict[str, Any]:
    prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    completion_tokens = len(text.split())
    return {
        "id": f"chatcmpl-fake-{number}", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class BatchAPIFake:
    """`with BatchAPIFake(answer) as api:` then point the client at `api.base_url`."""

    def __init__(self, answer: Answer, per_poll: int = 1_000_000, expire_after_polls: int | None = None,
                 line_error: LineError | None = None, refuse: str | None = None) -> None:
        self.answer = answer
        self.per_poll = per_poll
        self.expire_after_polls = expire_after_polls
        self.line_error = line_error or (lambda body: None)
        self.refuse = refuse  # a validation error: every batch ends `failed` with this message
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.created_batches: list[str] = []
        self.cancelled: list[str] = []
        self.live_requests: list[dict[str, Any]] = []
        self.polls = 0
        self.events: list[tuple[str, str]] = []  # ("create" | "retrieve", batch id), in order
        # Fault injection: an HTTP status (e.g. 500) for `GET /v1/batches/{id}` of the given batch, or None.
        self.retrieve_status: Callable[[str], int | None] = lambda batch_id: None
        self._progress: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- files ---------------------------------------------------------------------------------
    def add_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-{next(self._ids)}"
        record = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                  "filename": filename, "purpose": purpose, "status": "processed", "expires_at": None,
                  "status_details": None}
        self.files[file_id], self.contents[file_id] = record, data
        return record

    # -- batches -------------------------------------------------------------------------------
    def create_batch(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        input_file_id = request.get("input_file_id")
        if input_file_id not in self.contents:
            return 400, {"error": {"message": f"No such file {input_file_id}", "type": "invalid_request_error"}}
        lines = [json.loads(line) for line in self.contents[input_file_id].decode().splitlines() if line.strip()]
        batch_id = f"batch_{next(self._ids)}"
        now = int(time.time())
        batch = {
            "id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
            "input_file_id": input_file_id, "completion_window": request["completion_window"],
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
            "in_progress_at": None, "expires_at": now + 86400, "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": request.get("metadata"),
        }
        self.batches[batch_id] = batch
        self.created_batches.append(batch_id)
        self.events.append(("create", batch_id))
        self._progress[batch_id] = {"lines": lines, "done": [], "errors": [], "polls": 0}
        return 200, batch

    def advance(self, batch_id: str) -> dict[str, Any]:
        """One poll's worth of progress (what a real batch does between two retrieves)."""
        batch, progress = self.batches[batch_id], self._progress[batch_id]
        now = int(time.time())
        status = batch["status"]
        if status == "validating" and self.refuse:
            batch.update(status="failed", failed_at=now, errors={"object": "list", "data": [
                {"code": "invalid_request", "line": 1, "message": self.refuse, "param": "body.model"}]})
        elif status == "validating":
            batch.update(status="in_progress", in_progress_at=now)
        elif status == "in_progress":
            progress["polls"] += 1
            answered = len(progress["done"]) + len(progress["errors"])
            for line in progress["lines"][answered:answered + self.per_poll]:
                self._answer_line(line, progress)
            self._count(batch, progress)
            if len(progress["done"]) + len(progress["errors"]) == len(progress["lines"]):
                batch.update(status="finalizing", finalizing_at=now)
            elif self.expire_after_polls is not None and progress["polls"] >= self.expire_after_polls:
                self._finish(batch, progress, "expired", "expired_at", "batch_expired",
                             "This request could not be executed before the completion window expired.")
        elif status == "finalizing":
            self._finish(batch, progress, "completed", "completed_at", "", "")
        elif status == "cancelling":
            self._finish(batch, progress, "cancelled", "cancelled_at", "batch_cancelled",
                         "This request was cancelled before it was executed.")
        return batch

    def cancel(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        if batch["status"] in ("validating", "in_progress", "finalizing"):
            batch.update(status="cancelling", cancelling_at=int(time.time()))
            self.cancelled.append(batch_id)
        return batch

    def _answer_line(self, line: dict[str, Any], progress: dict[str, Any]) -> None:
        body, number = line["body"], next(self._ids)
        error = self.line_error(body)
        entry: dict[str, Any] = {"id": f"batch_req_{number}", "custom_id": line["custom_id"]}
        if error is not None:
            progress["errors"].append({**entry, "response": None, "error": error})
        else:
            response = {"status_code": 200, "request_id": f"req_{number}",
                        "body": _completion(body, self.answer(body), number)}
            progress["done"].append({**entry, "response": response, "error": None})

    def _count(self, batch: dict[str, Any], progress: dict[str, Any]) -> None:
        batch["request_counts"] = {"total": len(progress["lines"]), "completed": len(progress["done"]),
                                   "failed": len(progress["errors"])}

    def _finish(self, batch: dict[str, Any], progress: dict[str, Any], status: str, stamp: str, code: str,
                message: str) -> None:
        answered = len(progress["done"]) + len(progress["errors"])
        for line in progress["lines"][answered:]:  # never executed: expired or cancelled
            progress["errors"].append({"id": f"batch_req_{next(self._ids)}", "custom_id": line["custom_id"],
                                       "response": None, "error": {"code": code, "message": message}})
        self._count(batch, progress)
        batch.update(status=status, **{stamp: int(time.time())})
        for kind, key in (("done", "output_file_id"), ("errors", "error_file_id")):
            if progress[kind]:
                data = "".join(json.dumps(entry) + "\n" for entry in progress[kind]).encode()
                batch[key] = self.add_file(data, f"{batch['id']}_{kind}.jsonl", "batch_output")["id"]


def _handler_for(api: BatchAPIFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _read(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")  # v1, resource, id, ...
            with api._lock:
                if parts[1:2] == ["files"] and len(parts) == 4 and parts[3] == "content" and parts[2] in api.contents:
                    self._send(200, None, raw=api.contents[parts[2]])
                elif parts[1:2] == ["batches"] and len(parts) == 3 and parts[2] in api.batches:
                    api.polls += 1
                    api.events.append(("retrieve", parts[2]))
                    if (status := api.retrieve_status(parts[2])) is not None:
                        self._send(status, {"error": {"message": f"scripted {status}", "type": "server_error"}})
                    else:
                        self._send(200, api.advance(parts[2]))
                elif parts[1:] == ["batches"]:
                    data = sorted(api.batches.values(), key=lambda b: b["created_at"], reverse=True)
                    self._send(200, {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                                     "last_id": data[-1]["id"] if data else None, "has_more": False})
                elif parts[1:] == ["models"]:
                    self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            data = self._read()
            with api._lock:
                if parts[1:] == ["chat", "completions"]:
                    body = json.loads(data)
                    api.live_requests.append(body)
                    self._send(200, _completion(body, api.answer(body), len(api.live_requests)))
                elif parts[1:] == ["files"]:
                    fields = _multipart(self.headers.get("Content-Type", ""), data)
                    content, filename = fields["file"]
                    self._send(200, api.add_file(content, filename or "upload.jsonl", fields["purpose"][0].decode()))
                elif parts[1:] == ["batches"]:
                    self._send(*api.create_batch(json.loads(data)))
                elif parts[1:2] == ["batches"] and len(parts) == 4 and parts[3] == "cancel" and parts[2] in api.batches:
                    self._send(200, api.cancel(parts[2]))
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

    return Handler


def _multipart(content_type: str, data: bytes) -> dict[str, tuple[bytes, str | None]]:
    """Form fields of a multipart/form-data body: name -> (content, filename)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + data)
    fields: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = (payload if isinstance(payload, bytes) else b"", part.get_filename())
    return fields
