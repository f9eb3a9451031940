"""Small file helpers shared by every step: JSON(L) reading with located errors, atomic writes,
and a guard that never replaces an existing output unless the user asked for it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EFTEvalError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EFTEvalError(f"{path}: not valid JSON ({error})") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is an error naming it."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise EFTEvalError(f"{path}: file not found") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise EFTEvalError(f"{path}:{number}: not valid JSON ({error})") from None
            if not isinstance(record, dict):
                raise EFTEvalError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield number, record


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    # allow_nan=False: strict JSON for other tools; undefined numbers must already be None.
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def refuse_overwrite(path: Path, force: bool, what: str) -> None:
    """Raise unless `path` is absent or `force` is set; with `force` an existing file is removed.

    Directories are only ever cleared when `force` is given, and only then.
    """
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    if not force:
        raise EFTEvalError(f"{path}: {what} already exists; pass --force to replace it")
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
