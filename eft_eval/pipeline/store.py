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


def request_key(args: Sequence[Any]) -> str:
    """Identity of a `generate_until` request: its context and generation kwargs."""
    text = json.dumps(list(args), sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class GenerationStore:
    """Append-only `generations.jsonl`: `{"key", "copy", "text"}` per finished generation."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._texts: dict[str, dict[int, str]] = {}  # key -> copy index -> text
        if self.path.exists():
            self._load()
        # Kept open for the run (closed by `close`): one append + fsync per generation.
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            # A write cut short by the kill: drop it, so the next append starts on a fresh line.
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
        for line in complete.decode("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                self._texts.setdefault(record["key"], {})[int(record["copy"])] = record["text"]

    def get(self, key: str, copies: int) -> list[str] | None:
        """The `copies` stored texts of a request, or None unless all of them are stored."""
        texts = self._texts.get(key, {})
        return [texts[i] for i in range(copies)] if all(i in texts for i in range(copies)) else None

    def add(self, key: str, copy: int, text: str) -> None:
        """Record copy number `copy` (lm-eval's `repeats`) of a request; a later line wins."""
        self._texts.setdefault(key, {})[copy] = text
        self._file.write(json.dumps({"key": key, "copy": copy, "text": text}, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def __len__(self) -> int:
        return sum(len(texts) for texts in self._texts.values())

    def close(self) -> None:
        self._file.close()
