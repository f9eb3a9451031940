"""Which weights a component is: the hub snapshot's commit, or a digest of a local folder's files.

run.json records one `revision` per component, so a number can be traced to the exact weights, and a
resumed run refuses to mix generations of two versions of a model. A hub model's revision is the
commit its cached snapshot folder is named after (no download, no network when it is cached); a
local folder's is a SHA-256 over the files transformers loads from it (weights, configuration,
tokenizer, remote code), a GGUF checkpoint's over that one file. Hashing gigabytes takes seconds:
each file's digest is kept per process, and for large files on disk, keyed by path, size and
modification time, so a file is read again only when it changes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from eft_eval.models._spec import ComponentSpec

LOADED_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".json", ".model", ".txt", ".tiktoken", ".py",
                             ".gguf"})
"""The files of a local model folder whose content is the model (README, logs and checkpoints are not)."""

DISK_CACHE_BYTES = 64 << 20
"""Files at least this large have their digest kept on disk (beside the judge cache) between runs."""


def component_revision(component: ComponentSpec) -> str | None:
    """The component's resolved revision: `sha256:HEX` for a local folder or GGUF file, the snapshot's
    commit hash for a hub model, None for a hub model neither cached nor reachable (offline)."""
    folder = Path(component.model).expanduser()
    if folder.is_dir() and component.gguf_file:
        return "sha256:" + file_sha256(folder / component.gguf_file)  # what `sha256sum FILE` prints
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in LOADED_SUFFIXES)
        return "sha256:" + _digest_of_files(files, folder)
    return _hub_commit(component.model, component.gguf_file, component.revision)


def _digest_of_files(files: list[Path], folder: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, computed once per (path, size, mtime) (see the module)."""
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    key = f"{path}\0{size}\0{mtime_ns}"
    cache = _disk_cache() if size >= DISK_CACHE_BYTES else None
    if cache is not None and isinstance(found := _read_cache(cache).get(key), str):
        return found
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    if cache is not None:
        _write_cache(cache, {**_read_cache(cache), key: value})
    return value


def _disk_cache() -> Path:
    folder = os.environ.get("EFT_EVAL_CACHE_DIR") or Path.home() / ".cache" / "eft-eval"
    return Path(folder) / "file-digests.json"


def _read_cache(path: Path) -> dict[str, object]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: digests are computed again
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _write_cache(path: Path, entries: dict[str, object]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(entries), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:  # a read-only home: the digest is simply not kept
        pass


@functools.cache  # a sweep prepares many runs of the same components: one lookup each per process
def _hub_commit(repo: str, gguf_file: str | None, revision: str | None) -> str | None:
    from huggingface_hub import HfApi, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo, gguf_file or "config.json", revision=revision)
        if isinstance(cached, str):
            parts = Path(cached).parts  # .../models--ORG--NAME/snapshots/COMMIT/FILE
            return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None
        if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
            return None
        return HfApi().model_info(repo, revision=revision).sha
    except Exception:  # noqa: BLE001  (no such repository or folder, no network: loading the model says which)
        return None


__all__ = ["LOADED_SUFFIXES", "component_revision", "file_sha256"]
