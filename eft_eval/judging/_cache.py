"""A persistent cache of judge answers in SQLite.

Every answer is committed as soon as it arrives: at the end of the event-loop turn that
received it (answers that arrive together share one commit, so the cost per answer falls as more
requests are in flight), or at once outside an event loop. A killed run loses nothing it already
paid for and a re-run replays it without a request. The key covers everything that could change the
answer: judge spec fingerprint, judge model, endpoint, messages and request parameters (never the
API key). WAL mode lets several runs share one cache file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError


@dataclass(frozen=True)
class Completion:
    """One chat completion: the answer text and its token usage."""

    text: str
    usage: dict[str, int]
    model: str


def cache_key(fingerprint: str, judge_model: str, endpoint: str, messages: list[dict[str, str]],
              params: dict[str, Any]) -> str:
    payload = {"spec": fingerprint, "model": judge_model, "endpoint": endpoint,
               "messages": messages, "params": params}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class JudgeCache:
    """Completions by cache key. Use from one thread (the event loop's)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            # A commit survives a killed process without waiting for an fsync (only a power cut
            # could lose the last answers); an fsync per answer would cost more than the request.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
                "usage TEXT NOT NULL, model TEXT NOT NULL, created REAL NOT NULL)"
            )
            self._db.commit()
            self._commit_pending = False
            self._closed = False
        except OSError as error:
            raise EFTEvalError(f"cannot open the judge cache {self.path}: {error} (set --cache-dir)") from error
        except sqlite3.Error as error:
            raise self._unusable(error) from error

    def _unusable(self, error: sqlite3.Error) -> EFTEvalError:
        """One line naming the file and what to do. A damaged file (`file is not a database`, a
        corrupt page) only fails when a lookup reaches the damage, so every access says this."""
        what = "is locked or unreadable" if isinstance(error, sqlite3.OperationalError) else "is damaged"
        return EFTEvalError(
            f"the judge cache {self.path} {what} ({error}): move it away (or pass --cache-dir with another "
            "folder), or run with --no-cache; answers already written to samples.jsonl are not lost"
        )

    def get(self, key: str) -> Completion | None:
        try:
            row = self._db.execute("SELECT text, usage, model FROM completions WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as error:
            raise self._unusable(error) from error
        if row is None:
            return None
        return Completion(text=row[0], usage=json.loads(row[1]), model=row[2])

    def put(self, key: str, completion: Completion) -> None:
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?)",
                (key, completion.text, json.dumps(completion.usage), completion.model, time.time()),
            )
        except sqlite3.Error as error:
            raise self._unusable(error) from error
        if self._commit_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.commit()
            return
        self._commit_pending = True
        loop.call_soon(self.commit)

    def commit(self) -> None:
        """Make every answer put so far durable (called at the end of the loop turn, and by close)."""
        self._commit_pending = False
        if not self._closed and self._db.in_transaction:
            try:
                self._db.commit()
            except sqlite3.Error as error:
                raise self._unusable(error) from error

    def __len__(self) -> int:
        try:
            return int(self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])
        except sqlite3.Error as error:
            raise self._unusable(error) from error

    def close(self) -> None:
        try:
            self.commit()
        finally:  # a damaged file still lets go of its connection
            self._closed = True
            self._db.close()
