"""Finished generations, one JSON line each, appended the moment the model reports them.

This is what makes a killed run resumable: a line is written, flushed and fsynced before the run
moves on, and a re-run reads the file back and asks the model only for what is missing. A run
killed in the middle of a write leaves at most one partial last line; it is cut off on open.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.lm_eval import GeneratedText, length_fields


def request_key(args: Sequence[Any]) -> str:
    """Identity of a `generate_until` request: its context and generation kwargs."""
    text = json.dumps(list(args), sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class GenerationStore:
    """Append-only `generations.jsonl`: `{"key", "copy", "text"}` per finished generation, with
    `response_tokens` and `finish_reason` when the model reported them (a `GeneratedText`, which `get`
    hands back)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._texts: dict[str, dict[int, str]] = {}  # key -> copy index -> text
        self._failed = False
        if self.path.exists():
            self._load()
        # Kept open for the run (closed by `close`): one append + fsync per generation (per batch: `add_many`).
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _load(self) -> None:
        self._texts, complete = read_generations(self.path)
        if complete != self.path.stat().st_size:
            # A write cut short by the kill: drop it, so the next append starts on a fresh line.
            with open(self.path, "r+b") as handle:
                handle.truncate(complete)

    def get(self, key: str, copies: int) -> list[str] | None:
        """The `copies` stored texts of a request, or None unless all of them are stored."""
        texts = self._texts.get(key, {})
        return [texts[i] for i in range(copies)] if all(i in texts for i in range(copies)) else None

    def add(self, key: str, copy: int, text: str) -> None:
        """Record copy number `copy` (lm-eval's `repeats`) of a request; a later line wins.

        A failed write (disk full) is one clear error. What was stored stays valid: at most a torn
        last line, which the next run cuts off.
        """
        self.add_many([(key, copy, text)])

    def add_many(self, entries: Sequence[tuple[str, int, str]]) -> None:
        """`add` for several `(key, copy, text)` finished together (a batch): one fsync for all."""
        try:
            for key, copy, text in entries:
                record = {"key": key, "copy": copy, "text": str(text), **length_fields(text)}
                self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:
            self._failed = True
            raise EFTEvalError(
                f"{self.path}: cannot store a generation ({error.strerror or error}); the {len(self)} stored "
                "before are kept: free some space and re-run the same command to resume"
            ) from None
        for key, copy, text in entries:
            self._texts.setdefault(key, {})[copy] = text

    def __len__(self) -> int:
        return sum(len(texts) for texts in self._texts.values())

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            if not self._failed:
                raise
            # After a failed write the buffer still holds that line; it cannot be written either.


def read_generations(path: Path) -> tuple[dict[str, dict[int, str]], int]:
    """The stored texts (key -> copy -> text) and the length of the file's complete lines.

    A partial last line (a write cut short by a kill) is ignored; any other bad line is an error
    naming it: it is not ours to guess what it held.
    """
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    texts: dict[str, dict[int, str]] = {}
    for number, raw in enumerate(complete.split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            texts.setdefault(str(record["key"]), {})[int(record["copy"])] = _stored_text(record)
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise EFTEvalError(
                f"{path}:{number}: not a stored generation ({type(error).__name__}: {error}); delete that line "
                "(it is generated again) or the file, then re-run"
            ) from None
    return texts, len(complete)


def _stored_text(record: dict[str, Any]) -> str:
    """A stored line's text, as a `GeneratedText` when it holds a length and finish reason (lines written
    before these were recorded hold neither: their samples show them as missing)."""
    text = str(record["text"])
    if "response_tokens" not in record:
        return text
    return GeneratedText(text, int(record["response_tokens"]), str(record["finish_reason"]))
