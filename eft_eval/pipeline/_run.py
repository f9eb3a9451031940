"""`eft-eval run TASK`: generate with lm-eval and the `eft` backend, judge, aggregate, write.

    result = run_task(RunConfig(task="hh_harmless", model="base=B,ft=F,ref=R", output="runs/x"))

Each step leaves its output in the run folder before the next starts (see `_outputs.py`), so a
killed run re-run with the same arguments reuses every finished generation and judgment.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import iter_jsonl, read_json_object, write_json, write_jsonl
from eft_eval.judging import (
    QUERY_FIELDS,
    JudgeConfig,
    JudgeItem,
    JudgeRunState,
    JudgeSpec,
    count_uncached,
    describe_config,
    is_judge_file,
    judge_items_sync,
    load_judges,
    preflight,
)
from eft_eval.lm_eval import Conversation
from eft_eval.locking import lock_folder
from eft_eval.models import EFTSpec, parse_spec
from eft_eval.parsing import parse_gen_kwargs
from eft_eval.pipeline._outputs import (
    GENERATIONS_FILE,
    RunFolder,
    check_run_folder,
    file_digest,
    identity_differences,
    now,
    open_run_folder,
    versions,
)
from eft_eval.pipeline._store import read_generations
from eft_eval.pipeline._tasks import LoadedTask, load_task
from eft_eval.redact import redacted_argv
from eft_eval.stats import summarize_samples

logger = logging.getLogger(__name__)


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


@dataclass
class RunResult:
    folder: RunFolder
    results: dict[str, Any]
    rows: list[dict[str, Any]]


def resolve_spec(config: RunConfig) -> EFTSpec:
    if (config.model is None) == (config.preset is None):
        raise EFTEvalError("give the model with --model SPEC or --preset NAME (exactly one)")
    spec = parse_spec(config.model) if config.model is not None else parse_spec({"preset": config.preset})
    return spec.with_overrides(dtype=config.dtype or None, device=config.device or None)


def run_task(config: RunConfig, state: JudgeRunState | None = None) -> RunResult:
    """Generate, judge and aggregate one task for one model; returns what was written. `state` is
    what a sweep decides for this run's judging (its budget spent so far, submit-only batches)."""
    state = state or JudgeRunState()
    for flag, value in (("--limit", config.limit), ("--max-new-tokens", config.max_new_tokens),
                        ("--batch-size", config.batch_size)):
        if value is not None and value < 1:
            raise EFTEvalError(f"{flag} must be at least 1, got {value}")
    _gen_kwargs(config)  # checked before any model loads
    spec = resolve_spec(config)
    for path in config.data_files:
        check_data_file(Path(path))
    metadata: dict[str, Any] = {"selection_seed": config.seed}
    if config.data_files:
        metadata["data_files"] = [str(Path(p).resolve()) for p in config.data_files]
    loaded = load_task(config.task, config.include_paths, metadata)
    judges = load_judges(config.judges or loaded.default_judges or None, judge_folders(config.include_paths))
    # Judge settings that cannot work (no API key, no local model) fail now, not after generating.
    if config.judge.backend == "openai":
        config.judge.resolved_api_key()
    else:
        config.judge.resolved_local_model()
    root = Path(config.output or default_output(config, spec))
    # A refused key, a wrong URL or a server that is not running stops the run now, not after hours
    # of generation (one GET /models per endpoint; the local backend needs none). A finished run
    # whose every judgment is in its cache needs no server: re-run offline, it asks nothing.
    record = run_record(config, spec, loaded, judges)
    if not _judged_from_cache(root, config, record, judges):
        preflight(config.judge, judges)
    check_run_folder(root)  # a foreign folder is refused before a lock file is put in it
    # One run per folder at a time (issue 13): held until results.json is written; a killed run
    # releases it with the process.
    with lock_folder(root, "eft-eval run"):
        if (root / GENERATIONS_FILE).is_file():
            read_generations(root / GENERATIONS_FILE)  # a corrupt line stops us before run.json changes
        folder = open_run_folder(root, record)
        return _generate_and_judge(config, spec, loaded, judges, folder, state)


def _generate_and_judge(config: RunConfig, spec: EFTSpec, loaded: LoadedTask, judges: list[JudgeSpec],
                        folder: RunFolder, state: JudgeRunState) -> RunResult:
    judge_config = config.judge
    # The local backend keeps its converted (float32) judge model next to its cache: hundreds of
    # MB that belong in the shared cache folder, not in every run folder.
    if config.judge_cache_in_run and judge_config.backend != "local":
        judge_config = _with_cache(config.judge, folder.judge_cache)
    if judge_config.mode == "batch" and judge_config.batch.state is None:  # re-attached by a re-run
        judge_config = judge_config.with_batch_state(folder.batch_state)
    if judge_config.batch.cancel:  # --judge-mode batch --cancel: nothing is generated or judged
        from eft_eval.judging._batch import cancel_batches

        return RunResult(folder=folder, results={"cancelled_batches": cancel_batches(judge_config)}, rows=[])

    samples = generate(config, spec, loaded, folder)
    rows = [_sample_row(sample, loaded.name, spec) for sample in samples]
    items = [JudgeItem(query=row["query"], response=row["response"]) for row in rows]
    logger.info("judging %d responses with %s", len(rows), ", ".join(j.name for j in judges))
    from eft_eval.judging._ledger import new_ledger

    ledger = new_ledger(judge_config, state.budget_spent)
    try:
        judged = judge_items_sync(items, judges, judge_config, ledger=ledger, state=state)
    except EFTEvalError as error:  # a sweep's budget still counts what was paid for (or submitted)
        raise ledger.stopped(error) from error
    for row, judgments in zip(rows, judged):
        row["judgments"] = judgments
    # The judgments first: what was paid for is on disk before anything can fail summarizing it.
    write_jsonl(folder.samples, rows)
    results = {
        "task": loaded.name,
        "model": spec.to_string(),
        "preset": config.preset,
        "n_docs": len(rows),
        **summarize_samples(rows, judges),  # judges, and by_category when documents have one
        "judge_config": describe_config(judge_config, judges),
        "cost": ledger.summary(),
        "finished": now(),
    }
    write_json(folder.results, results)
    return RunResult(folder=folder, results=results, rows=rows)


def generate(config: RunConfig, spec: EFTSpec, loaded: LoadedTask, folder: RunFolder) -> list[dict[str, Any]]:
    """lm-eval's evaluation of the task with the resumable `eft` model; its logged samples."""
    from eft_eval.lm_eval import EFTLM
    from eft_eval.pipeline._resumable import ResumableLM
    from eft_eval.pipeline._store import GenerationStore

    def make_model() -> EFTLM:
        try:
            return EFTLM(spec=spec, batch_size=config.batch_size, seed=config.seed)
        except OSError as error:  # a hub id that cannot be downloaded, a folder without weights
            raise EFTEvalError(f"cannot load the model: {error}") from error

    store = GenerationStore(folder.generations)
    model = ResumableLM(make_model, store, {"eft_spec": spec.to_string()}, progress=config.progress)
    try:
        output = evaluate_task(config, loaded, model)
    finally:
        store.close()
    logger.info("generations: %d reused from %s, %d new", model.reused, folder.generations, model.generated)
    if output is None:
        raise EFTEvalError("lm-eval returned no results")
    return sorted(output["samples"][loaded.name], key=lambda sample: sample["doc_id"])


def evaluate_task(config: RunConfig, loaded: LoadedTask, model: Any) -> dict[str, Any] | None:
    """lm-eval's `simple_evaluate` of the task as a run does it: the requests a model gets depend
    only on this call (a sweep collects them once for many grid points through it)."""
    import lm_eval

    gen_kwargs = _gen_kwargs(config)
    with _without_lm_eval_environment_report():
        output: dict[str, Any] | None = lm_eval.simple_evaluate(
            model=model, tasks=[loaded.task], task_manager=loaded.manager, limit=config.limit,
            log_samples=True, predict_only=True, apply_chat_template=True, gen_kwargs=gen_kwargs or None,
            bootstrap_iters=0, random_seed=config.seed, numpy_random_seed=config.seed,
            torch_random_seed=config.seed, fewshot_random_seed=config.seed,
        )
    return output


@contextlib.contextmanager
def _without_lm_eval_environment_report() -> Iterator[None]:
    """Skip lm-eval's environment report inside `simple_evaluate`.

    It runs `pip list` and `git` in subprocesses (0.4-1.7 s on every run, the largest fixed cost of
    a sweep point) and prints "fatal: not a git repository" outside a checkout; run.json already
    records the package versions, and the run never reads these fields.
    """
    from lm_eval import evaluator

    saved = evaluator.add_env_info, evaluator.get_git_commit_hash
    evaluator.add_env_info = lambda storage: None
    evaluator.get_git_commit_hash = lambda: None
    try:
        yield
    finally:
        evaluator.add_env_info, evaluator.get_git_commit_hash = saved


def _gen_kwargs(config: RunConfig) -> str:
    """lm-eval's gen_kwargs text, checked first: lm-eval parses it leniently (see `parse_gen_kwargs`)."""
    parts = [config.gen_kwargs] if config.gen_kwargs else []
    given = parse_gen_kwargs(config.gen_kwargs, "gen_kwargs") if config.gen_kwargs else {}
    if config.max_new_tokens is not None and "max_gen_toks" in given:
        raise EFTEvalError(f"gen_kwargs max_gen_toks={given['max_gen_toks']} and --max-new-tokens "
                           f"{config.max_new_tokens} both set the response length: give one")
    if config.max_new_tokens is not None:
        parts.append(f"max_gen_toks={config.max_new_tokens}")
    return ",".join(parts)


def _sample_row(sample: dict[str, Any], task: str, spec: EFTSpec) -> dict[str, Any]:
    """One samples.jsonl row (docs/formats.md) from an lm-eval logged sample."""
    doc = sample["doc"] if isinstance(sample.get("doc"), dict) else {}
    query = next((doc[k] for k in QUERY_FIELDS if isinstance(doc.get(k), str)), None)
    if query is None:
        # Another lm-eval task: the prompt it sent, as the user's last message.
        prompt = sample["arguments"][0][0]
        conversation = Conversation.from_context(prompt)
        query = conversation.messages[-1]["content"] if conversation else prompt
    response: Any = sample.get("filtered_resps") or sample.get("resps")
    while isinstance(response, list) and response:
        response = response[0]
    return {
        "doc_id": sample["doc_id"],
        "task": task,
        "model": spec.to_string(),
        "query": query,
        "response": response if isinstance(response, str) else "",
        "judgments": {},
        "doc": doc,
    }


def run_record(config: RunConfig, spec: EFTSpec, loaded: LoadedTask, judges: list[JudgeSpec]) -> dict[str, Any]:
    """run.json: the full configuration. `identity` holds what must match for a resume."""
    data_files = [{"path": str(Path(p).resolve()), "sha256": file_digest(p)} for p in config.data_files]
    generation = {"max_new_tokens": config.max_new_tokens, "gen_kwargs": config.gen_kwargs,
                  "task_generation_kwargs": loaded.task.get_config("generation_kwargs"),
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
        "command": redacted_argv(sys.argv),  # no user:password@ of a --base-url
        "versions": versions(),
        "identity": identity,
    }


def default_output(config: RunConfig, spec: EFTSpec) -> Path:
    """`runs/TASK/LABEL-DIGEST-seedN`. Everything that makes two runs generate differently is in the
    path: the digest covers the spec (a preset's overrides, --dtype/--device included), the data
    files and the generation settings, and the seed is spelled out, so a parallel seed sweep with
    default paths never shares a folder."""
    import hashlib
    import json

    label = (config.preset.replace(":", "-").replace("/", "-") if config.preset
             else Path(spec.base.label).name or "model")
    varies = {"model": spec.to_string(), "data_files": [str(Path(p).resolve()) for p in config.data_files],
              "max_new_tokens": config.max_new_tokens, "gen_kwargs": config.gen_kwargs}
    digest = hashlib.sha256(json.dumps(varies, sort_keys=True).encode()).hexdigest()[:8]
    return Path("runs") / config.task / f"{label}-{digest}-seed{config.seed}"


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
    folders = []
    for folder in include_paths:
        if any(is_judge_file(path) for path in sorted(Path(folder).glob("*.y*ml"))):
            folders.append(folder)
    return folders


def _judged_from_cache(root: Path, config: RunConfig, record: dict[str, Any], judges: list[JudgeSpec]) -> bool:
    """Whether `root` holds this very run, finished, with every judgment of its samples in its judge cache.

    "This very run": the same identity and `--limit` (a larger limit generates new responses,
    which will need the server).
    """
    folder = RunFolder(root)
    if config.judge.backend != "openai" or not (folder.results.is_file() and folder.samples.is_file()):
        return False
    try:
        previous = read_json_object(folder.run)
    except EFTEvalError:
        return False
    if identity_differences(previous, record) or previous.get("limit") != config.limit:
        return False
    judge_config = _with_cache(config.judge, folder.judge_cache) if config.judge_cache_in_run else config.judge
    try:
        rows = [row for _, row in iter_jsonl(folder.samples)]
    except EFTEvalError:  # a damaged samples.jsonl: the run will say so; judging may need the server
        return False
    items = [JudgeItem(query=str(row.get("query") or ""), response=str(row.get("response") or "")) for row in rows]
    return bool(items) and count_uncached(items, judges, judge_config) == 0


def _with_cache(config: JudgeConfig, path: Path) -> JudgeConfig:
    import dataclasses

    return dataclasses.replace(config, cache_path=path)


__all__ = ["RunConfig", "RunResult", "resolve_spec", "run_task"]
