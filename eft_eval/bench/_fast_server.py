"""A minimal asyncio chat-completions server for `eft-eval bench judge`, run in its own process.

The bench measures the *client's* CPU per judgment, so the server must neither share the client's
process (its CPU time would be counted) nor be the bottleneck at 256 requests in flight (the
thread-per-connection `eft_eval.testing.LoopbackServer` is, on a small machine). This one answers every
`POST .../chat/completions` with the same canned completion after `--latency` seconds, keeps
connections alive, and parses only what HTTP/1.1 framing needs. Standard library only.

    python -m eft_eval.bench._fast_server --latency 0.05   # prints "PORT <n>" then serves
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

_TEXT = "Reason: The response states nothing false.\nScore: 0"


def _body() -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()), "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": _TEXT}}],
        "usage": {"prompt_tokens": 60, "completion_tokens": 9, "total_tokens": 69},
    }).encode()


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float,
                            reply: bytes) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if latency:
                await asyncio.sleep(latency)
            writer.write(reply)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _main(latency: float) -> None:
    body = _body()
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\n\r\n" + body)
    server = await asyncio.start_server(lambda r, w: _serve_connection(r, w, latency, reply), "127.0.0.1", 0,
                                        backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(allow_abbrev=False)  # as every eft-eval parser: options as written
    parser.add_argument("--latency", type=float, default=0.0)  # set by `bench judge`, already checked there
    try:
        asyncio.run(_main(parser.parse_args().latency))
    except KeyboardInterrupt:
        sys.exit(0)
