"""What `eft-eval run` is asked to do: `RunConfig`, its flags one to one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eft_eval.judging import JudgeConfig


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


__all__ = ["RunConfig"]
