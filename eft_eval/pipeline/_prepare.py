"""The first stage of a run: everything checked and loaded before anything is written or generated.

`RunConfig` is what `eft-eval run` is asked to do (its flags one to one). `prepare` resolves the
spec, loads the task and the judges, composes `run.json` (its `identity`: what a resume must match,
anything that would change a generation), writes nothing, and stops a run whose judge settings
cannot work (no key, a server that is not there) before hours of generation. `open_folder` then
takes the run folder's lock, checks its identity and writes `run.json`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import iter_jsonl
from eft_eval.judging import (
    JudgeConfig,
    JudgeItem,
    JudgeSpec,
    count_uncached,
    describe_config,
    is_judge_file,
    load_judges,
    preflight,
)
from eft_eval.models import EFTSpec, component_revision, file_sha256, parse_spec
from eft_eval.parsing import parse_gen_kwargs
from eft_eval.pipeline._settings import run_command
from eft_eval.pipeline._store import read_generations
from eft_eval.pipeline._tasks import LoadedTask, load_task, task_data_files
from eft_eval.runfolder import RunFolder, identity_differences

_PACKAGES = ("eft-eval", "torch", "transformers", "lm_eval", "datasets", "openai", "tokenizers")


@dataclass
class RunConfig:
    """Everything `eft-eval run` needs; the CLI flags map one to one."""

    task: str
    model: str | None = None
    """A model or EFT spec (compact string, YAML path); exclusive with `preset`."""
    preset: str | None = None
    """`FAMILY:CONFIG`, e.g. `llama2:up` (see `eft_eval.models._presets`)."""
    output: str | Path | None = None
    """Run folder; default `runs/<task>/<model label>-<digest of what varies>-seed<seed>`."""
    judges: list[str] | None = None
    """Judge names; default the task's `metadata.judges` (all judges if it names none)."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """Judge settings (backend, model, endpoint, concurrency, cache)."""
    judge_cache_in_run: bool = True
    """Keep judge answers in `DIR/judge-cache.sqlite` (what resumes judging) instead of `judge.cache_path`
    (except for the local backend, whose converted model lives beside its cache)."""
    limit: int | None = None
    """Documents to run: the first N of the task's (randomly drawn) selection."""
    seed: int = 0
    """Selects the task's documents and seeds the EFT sampler."""
    include_paths: list[str] = field(default_factory=list)
    data_files: list[str] = field(default_factory=list)
    """Local data files replacing the task's hub data set."""
    max_new_tokens: int | None = None
    gen_kwargs: str | None = None
    """lm-eval generation kwargs overriding the task's, e.g. `do_sample=true,temperature=0.7`."""
    batch_size: int = 8
    dtype: str | None = None
    """Overrides every component's dtype (auto, bf16, fp16, fp32)."""
    device: str | None = None
    """Overrides every component's device (cpu, cuda, cuda:1, auto)."""
    progress: bool = True


@dataclass(frozen=True)
class PreparedRun:
    """One run, checked and loaded: what every later stage reads."""

    config: RunConfig
    spec: EFTSpec
    task: LoadedTask
    judges: list[JudgeSpec]
    folder: RunFolder
    record: dict[str, Any]
    """run.json as `open_folder` writes it (its `identity` is what a resume must match)."""
    judge_config: JudgeConfig
    """`config.judge` with the run folder's cache and batch record."""
    gen_kwargs: str
    """lm-eval's gen_kwargs text (the run's --gen-kwargs and --max-new-tokens)."""


@dataclass
class Loaded:
    """What several runs of one process share: tasks, judge files and judge settings checked once.

    A task is shared only by runs with the same generation settings: lm-eval writes a run's
    gen_kwargs into the task object it evaluates.
    """

    tasks: dict[str, LoadedTask] = field(default_factory=dict)
    judges: dict[str, list[JudgeSpec]] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)


def prepare(config: RunConfig, loaded: Loaded | None = None) -> PreparedRun:
    """Check `config`, load its spec, task and judges, and check the judge settings (see module)."""
    loaded = loaded or Loaded()
    for flag, value in (("--limit", config.limit), ("--max-new-tokens", config.max_new_tokens),
                        ("--batch-size", config.batch_size)):
        if value is not None and value < 1:
            raise EFTEvalError(f"{flag} must be at least 1, got {value}")
    gen_kwargs = gen_kwargs_text(config)  # checked before any model loads
    spec = resolve_spec(config)
    for path in config.data_files:
        check_data_file(Path(path))
    key = repr((config.task, config.include_paths, config.data_files, config.seed, gen_kwargs))
    if key not in loaded.tasks:
        metadata: dict[str, Any] = {"selection_seed": config.seed}
        if config.data_files:
            metadata["data_files"] = [str(Path(p).resolve()) for p in config.data_files]
        loaded.tasks[key] = load_task(config.task, config.include_paths, metadata)
    task = loaded.tasks[key]
    names, folders = config.judges or task.default_judges or None, judge_folders(config.include_paths)
    if (judges_key := repr((names, folders))) not in loaded.judges:
        loaded.judges[judges_key] = load_judges(names, folders)
    judges = loaded.judges[judges_key]
    folder = RunFolder(config.output or default_output(config, spec))
    judge_config = config.judge
    # The local backend keeps its converted (float32) judge model next to its cache: hundreds of
    # MB that belong in the shared cache folder, not in every run folder.
    if config.judge_cache_in_run and judge_config.backend != "local":
        judge_config = dataclasses.replace(judge_config, cache_path=folder.judge_cache)
    if judge_config.mode == "batch" and judge_config.batch.state is None:  # re-attached by a re-run
        judge_config = judge_config.with_batch_state(folder.batch_state)
    prepared = PreparedRun(config, spec, task, judges, folder, run_record(config, spec, task, judges), judge_config,
                           gen_kwargs)
    _check_judge_settings(prepared, loaded.checked)
    return prepared


def _check_judge_settings(prepared: PreparedRun, checked: set[str]) -> None:
    """Judge settings that cannot work fail now, not after generating; once per distinct setting.

    A refused key, a wrong URL or a server that is not running stops the run (one GET /models per
    endpoint; the local backend needs none). A finished run whose every judgment is in its cache
    needs no server: re-run offline, it asks nothing.
    """
    config = prepared.config.judge
    if config.backend == "openai":
        config.resolved_api_key()
    else:
        config.resolved_local_model()
    key = repr((config, [judge.name for judge in prepared.judges]))
    if key in checked or _judged_from_cache(prepared):
        return
    preflight(config, prepared.judges)
    checked.add(key)


def _judged_from_cache(prepared: PreparedRun) -> bool:
    """Whether the folder holds this very run, finished, with every judgment of its samples cached.

    "This very run": the same identity and `--limit` (a larger limit generates new responses,
    which will need the server).
    """
    folder = prepared.folder
    if prepared.config.judge.backend != "openai" or not folder.samples.is_file():
        return False
    previous = folder.finished_record()
    if (previous is None or identity_differences(previous, prepared.record)
            or previous.get("limit") != prepared.config.limit):
        return False
    try:
        rows = [row for _, row in iter_jsonl(folder.samples)]
    except EFTEvalError:  # a damaged samples.jsonl: the run will say so; judging may need the server
        return False
    items = [JudgeItem(query=str(row.get("query") or ""), response=str(row.get("response") or "")) for row in rows]
    return bool(items) and count_uncached(items, prepared.judges, prepared.judge_config) == 0


@contextmanager
def open_folder(prepared: PreparedRun, what: str = "eft-eval run") -> Iterator[RunFolder]:
    """The run folder, locked for the block (one run per folder at a time; a killed run releases it
    with the process), its identity checked and run.json written."""
    folder = prepared.folder
    folder.check()  # a foreign folder is refused before a lock file is put in it
    with folder.lock(what):
        if folder.generations.is_file():
            read_generations(folder.generations)  # a corrupt line stops us before run.json changes
        yield folder.open(prepared.record)


def run_record(config: RunConfig, spec: EFTSpec, loaded: LoadedTask, judges: list[JudgeSpec]) -> dict[str, Any]:
    """run.json: the full configuration. `identity` holds what must match for a resume."""
    data_files = [{"path": str(Path(p).resolve()), "sha256": file_digest(p)} for p in config.data_files]
    generation = {"max_new_tokens": config.max_new_tokens, "gen_kwargs": config.gen_kwargs,
                  # A copy: lm-eval writes a run's gen_kwargs into the task's own dict when it evaluates.
                  "task_generation_kwargs": copy.deepcopy(loaded.task.get_config("generation_kwargs")),
                  "apply_chat_template": True}
    identity = {"task": loaded.name, "model": spec.to_dict(), "seed": config.seed, "data_files": data_files,
                "generation": generation}
    return {
        "task": loaded.name,
        "task_source": loaded.source,
        "task_about": loaded.about,
        "model": spec.to_string(),
        "model_spec": spec.to_dict(),
        # Whether any component ran code from its model repository (also per component in model_spec).
        "trust_remote_code": any(component.trust_remote_code for _, component in spec.components()),
        "preset": config.preset,
        "seed": config.seed,
        "limit": config.limit,
        "data_files": data_files,
        "generation": {**generation, "batch_size": config.batch_size},
        "judges": [judge.name for judge in judges],
        "judge_config": describe_config(config.judge, judges),
        "include_paths": [str(Path(p).resolve()) for p in config.include_paths],
        # What a user would type for this run, even when the demo or a sweep started it; no secrets.
        "command": run_command(config),
        "versions": versions(),
        # What a number can be traced to; a resume refuses files that changed (`RunFolder.open`).
        "revisions": revisions(spec),
        "task_data_files": [{"path": str(p), "sha256": file_sha256(p)} for p in task_data_files(loaded)],
        "identity": identity,
    }


def revisions(spec: EFTSpec) -> dict[str, dict[str, Any]]:
    """Each component's resolved revision, by role: `{"model": LABEL, "revision": COMMIT or sha256:HEX}`."""
    return {role: {"model": component.label, "revision": component_revision(component)}
            for role, component in spec.components()}


def default_output(config: RunConfig, spec: EFTSpec) -> Path:
    """`runs/TASK/LABEL-DIGEST-seedN`. Everything that makes two runs generate differently is in the
    path: the digest covers the spec (a preset's overrides, --dtype/--device included), the data
    files and the generation settings, and the seed is spelled out, so a parallel seed sweep with
    default paths never shares a folder."""
    label = (config.preset.replace(":", "-").replace("/", "-") if config.preset
             else Path(spec.base.label).name or "model")
    varies = {"model": spec.to_string(), "data_files": [str(Path(p).resolve()) for p in config.data_files],
              "max_new_tokens": config.max_new_tokens, "gen_kwargs": config.gen_kwargs}
    digest = hashlib.sha256(json.dumps(varies, sort_keys=True).encode()).hexdigest()[:8]
    return Path("runs") / config.task / f"{label}-{digest}-seed{config.seed}"


def versions() -> dict[str, str]:
    """Python and the versions of the packages that shape the results."""
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> dict[str, str]:
    # Read once per process: each lookup scans the installed distributions (milliseconds each), and
    # a sweep writes these for every grid point; what is installed does not change meanwhile.
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


def resolve_spec(config: RunConfig) -> EFTSpec:
    if (config.model is None) == (config.preset is None):
        raise EFTEvalError("give the model with --model SPEC or --preset NAME (exactly one)")
    spec = parse_spec(config.model) if config.model is not None else parse_spec({"preset": config.preset})
    return spec.with_overrides(dtype=config.dtype or None, device=config.device or None)


def gen_kwargs_text(config: RunConfig) -> str:
    """lm-eval's gen_kwargs text, checked first: lm-eval parses it leniently (see `parse_gen_kwargs`)."""
    parts = [config.gen_kwargs] if config.gen_kwargs else []
    given = parse_gen_kwargs(config.gen_kwargs, "gen_kwargs") if config.gen_kwargs else {}
    if config.max_new_tokens is not None and "max_gen_toks" in given:
        raise EFTEvalError(f"gen_kwargs max_gen_toks={given['max_gen_toks']} and --max-new-tokens "
                           f"{config.max_new_tokens} both set the response length: give one")
    if config.max_new_tokens is not None:
        parts.append(f"max_gen_toks={config.max_new_tokens}")
    return ",".join(parts)


def check_data_file(path: Path) -> None:
    """A --data-files entry must be a JSONL file (optionally .gz) with at least one record."""
    if path.is_dir():
        raise EFTEvalError(f"--data-files {path} is a folder; give the .jsonl/.jsonl.gz files in it, e.g. "
                           f"{path}/*.jsonl")
    if not path.is_file():
        raise EFTEvalError(f"data file {path} does not exist")
    if next(iter_jsonl(path), None) is None:  # also names a first line that is not JSON or not UTF-8
        raise EFTEvalError(f"data file {path} holds no records (it is empty)")


def judge_folders(include_paths: list[str]) -> list[str]:
    """The include folders that hold judge YAML files (the others hold tasks)."""
    return [folder for folder in include_paths
            if any(is_judge_file(path) for path in sorted(Path(folder).glob("*.y*ml")))]


__all__ = ["Loaded", "PreparedRun", "RunConfig", "default_output", "file_digest", "gen_kwargs_text", "judge_folders",
           "open_folder", "prepare", "resolve_spec", "revisions", "run_record", "versions"]
