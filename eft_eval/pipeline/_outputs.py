"""A run's output folder: which files it holds, and refusing to mix two configurations in one.

    DIR/run.json            the full configuration, versions, seed (written first, kept up to date)
    DIR/generations.jsonl   finished generations, appended as they finish (what a resume reuses)
    DIR/judge-cache.sqlite  judge answers, committed as they arrive (what a resume replays; the
                            local backend keeps them in the shared cache instead)
    DIR/samples.jsonl       one judged sample per document (docs/formats.md)
    DIR/results.json        per judge: mean, standard error, n scored / abstained / failed

A re-run with the same generation settings resumes in the folder; anything that would change a
generation (task, model, seed, data, generation settings) is refused instead of mixed. Judges and
`--limit` may change: judgments are looked up per judge, and a larger limit extends the selection.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import LOCK_FILE, iter_jsonl, read_json_object, write_json
from eft_eval.judging._config import BATCH_STATE_FILE

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
GENERATIONS_FILE = "generations.jsonl"
JUDGE_CACHE_FILE = "judge-cache.sqlite"
_PACKAGES = ("eft-eval", "torch", "transformers", "lm_eval", "datasets", "openai", "tokenizers")


class RunFolder:
    """Paths of one run's files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.run = self.root / RUN_FILE
        self.samples = self.root / SAMPLES_FILE
        self.results = self.root / RESULTS_FILE
        self.generations = self.root / GENERATIONS_FILE
        self.judge_cache = self.root / JUDGE_CACHE_FILE
        self.batch_state = self.root / BATCH_STATE_FILE


def versions() -> dict[str, str]:
    """Python and the versions of the packages that shape the results."""
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> dict[str, str]:
    # Read once per process: each lookup scans the installed distributions (milliseconds each), and
    # a sweep writes these for every grid point, twice; what is installed does not change meanwhile.
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def open_run_folder(root: str | Path, record: dict[str, Any]) -> RunFolder:
    """Create or resume `root` for a run described by `record` (which holds an `identity`).

    Refuses a folder holding a run whose identity differs, naming what differs, and a non-empty
    folder that is not a run folder at all.
    """
    folder = RunFolder(Path(root))
    previous: dict[str, Any] | None = None
    if folder.run.is_file():
        previous = read_json_object(folder.run)
        differences = identity_differences(previous, record)
        # A run that stopped before its first generation (a model that failed to load) has nothing
        # to mix with: its folder is taken over.
        if differences and _holds_results(folder):
            raise EFTEvalError(
                f"{folder.root} holds a run of a different configuration ({'; '.join(differences)}); "
                "refusing to mix them: choose another --output, or delete the folder to start over"
            )
        if differences:
            previous = None  # taken over: a new run
    else:
        check_run_folder(folder.root)
    try:
        folder.root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EFTEvalError(f"cannot create the output folder {folder.root}: {error.strerror or error}") from error
    record = {**record, "created": (previous or {}).get("created", now()), "updated": now()}
    if previous is not None:
        record["resumed"] = int(previous.get("resumed", 0)) + 1
    write_json(folder.run, record)
    return folder


def check_run_folder(root: Path) -> None:
    """Refuse an existing path that is not a run folder: a file, or a folder with other content.

    A folder holding only a lock file (`eft_eval.locking`) is an empty folder.
    """
    if not root.exists() or (root / RUN_FILE).is_file():
        return
    if not root.is_dir() or any(p.name != LOCK_FILE for p in root.iterdir()):
        raise EFTEvalError(f"{root} exists and is not an eft-eval run folder (no {RUN_FILE}); choose another --output")


def _holds_results(folder: RunFolder) -> bool:
    return folder.samples.exists() or (folder.generations.exists() and folder.generations.stat().st_size > 0)


def identity_differences(previous_run: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """What differs between the `identity` of a folder's run.json and that of `record` (empty: the same run)."""
    return _differences(previous_run.get("identity", {}), record["identity"])


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """`key.path: old in the folder, new now` for each differing leaf (compared as JSON)."""
    old, new = json.loads(json.dumps(old, default=str)), json.loads(json.dumps(new, default=str))
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            found += _differences(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))
        return found
    if old == new:
        return []
    return [f"{where or 'value'}: {_short(old)} in the folder, {_short(new)} now"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def read_samples(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise EFTEvalError(f"{path} does not exist (run `eft-eval run` first)")
    return [record for _, record in iter_jsonl(path)]


__all__ = ["RunFolder", "check_run_folder", "file_digest", "identity_differences", "now", "open_run_folder",
           "read_samples", "versions"]
