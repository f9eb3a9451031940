"""Small file helpers shared by every step: JSON(L) reading with located errors, atomic writes,
and a guard that never replaces an existing output unless the user asked for it."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError

# The lock file `eft_eval.locking.lock_folder` keeps in a folder (named here to avoid an import cycle).
LOCK_FILE = ".eft-eval.lock"


def read_text(path: Path, what: str = "file") -> str:
    """The UTF-8 text of `path`; a missing file, a folder or non-UTF-8 bytes are one-line errors."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise EFTEvalError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise EFTEvalError(f"{path}: is a folder, expected a {what}") from None
    except OSError as error:
        raise EFTEvalError(f"{path}: cannot read the {what} ({error.strerror or error})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise EFTEvalError(f"{path}:{line}: not UTF-8 text ({_bad_bytes(error)})") from None


def _bad_bytes(error: UnicodeDecodeError) -> str:
    bad = error.object[error.start:error.end]
    return f"byte{'s' if len(bad) > 1 else ''} {bad.hex(' ')} at offset {error.start}"


def read_json(path: Path) -> Any:
    text = read_text(path, "JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise EFTEvalError(f"{path}: not valid JSON ({error})") from None


def read_json_object(path: Path, missing_ok: bool = False) -> dict[str, Any]:
    """A JSON file that must hold an object; with `missing_ok`, `{}` when there is no such file."""
    if missing_ok and not Path(path).is_file():
        return {}
    data = read_json(path)
    if not isinstance(data, dict):
        raise EFTEvalError(f"{path}: must hold a JSON object")
    return data


def _open_lines(path: Path) -> io.BufferedIOBase:
    """`path` opened for reading bytes; `.gz` files are decompressed (as `--data-files` reads them)."""
    if path.is_dir():
        raise EFTEvalError(f"{path}: is a folder, expected a JSONL file")
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    except FileNotFoundError:
        raise EFTEvalError(f"{path}: file not found") from None
    except OSError as error:
        raise EFTEvalError(f"{path}: cannot read the file ({error.strerror or error})") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is an error naming it.

    `.jsonl.gz` is read too. Non-UTF-8 bytes, a broken gzip stream and bad JSON name the line.
    """
    path = Path(path)
    with _open_lines(path) as handle:
        number = 0
        try:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise EFTEvalError(f"{path}:{number}: not UTF-8 text ({_bad_bytes(error)})") from None
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise EFTEvalError(f"{path}:{number}: not valid JSON ({error})") from None
                if not isinstance(record, dict):
                    raise EFTEvalError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
                yield number, record
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise EFTEvalError(f"{path}:{number + 1}: not a readable gzip file ({error})") from None


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:  # name the file the user asked for, not our temporary one
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp makes the file 0600; give it what open() would have: 0666 less the umask, so
        # every output file of a run has the same, user-chosen permissions.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
    # A folder's lock file (eft_eval.locking) is not content: the folder is still empty, and
    # clearing it keeps the lock this command may hold on it.
    if path.is_dir() and not any(p.name != LOCK_FILE for p in path.iterdir()):
        return
    if not force:
        raise EFTEvalError(f"{path}: {what} already exists; pass --force to replace it")
    if path.is_dir():
        for child in path.iterdir():
            if child.name == LOCK_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    else:
        path.unlink()


__all__ = [
    "LOCK_FILE",
    "current_umask",
    "iter_jsonl",
    "read_json",
    "read_json_object",
    "read_text",
    "refuse_overwrite",
    "write_json",
    "write_jsonl",
    "write_text_atomic",
]
