"""The run settings table: each `eft-eval run` flag, its study `run:` key and its `RunConfig` field.

`eft-eval run` reads its flags through it, a sweep reads each study point's settings through it
and writes `sweep --list` commands back through it; judge settings have `JUDGE_SETTINGS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eft_eval.parsing import count_arg, gen_kwargs_arg, name_list_arg, sampling_arg, seed_arg
from eft_eval.redact import redacted_argv
from eft_eval.settings import Setting, to_argv


def judge_names(value: Any) -> list[str] | None:
    """`a, b` or a list of names -> the names; None stays None (the task's judges)."""
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return [str(name) for name in value]


RUN_SETTINGS: tuple[Setting, ...] = (
    # In the order `sweep --list` writes them.
    Setting("judges", "judges", study=True, parse=judge_names, render=lambda names: [",".join(names)],
            argument={"type": name_list_arg}, help="comma-separated judge names (default: the task's judges)"),
    Setting("limit", "limit", study=True, argument={"type": count_arg()},
            help="run only the first N documents of the task's selection"),
    Setting("max_new_tokens", "max_new_tokens", study=True, argument={"type": sampling_arg("max_new_tokens")},
            help="override the task's max_gen_toks"),
    Setting("gen_kwargs", "gen_kwargs", study=True, argument={"type": gen_kwargs_arg},
            help="lm-eval generation kwargs, e.g. do_sample=true,temperature=0.7"),
    Setting("dtype", "dtype", study=True, argument={"choices": ["auto", "bf16", "fp16", "fp32"]},
            help="override every component's dtype"),
    Setting("device", "device", study=True, help="override every component's device (cpu, cuda, cuda:1, auto)"),
    Setting("seed", "seed", study=True, parse=int, argument={"type": seed_arg()},
            help="selects the task's documents and seeds sampling"),
    Setting("batch_size", "batch_size", study=True, parse=int, argument={"type": count_arg()},
            help="prompts per decoding batch"),
    Setting("data_files", "data_files", study=True, parse=lambda files: [str(path) for path in files],
            argument={"nargs": "+", "metavar": "FILE"},
            help="local .jsonl/.jsonl.gz files replacing the task's hub data set"),
)
"""Every run setting a flag and a study file share (the task, model and folders aside)."""

RUN_KEYS = ("task", *(setting.dest for setting in RUN_SETTINGS))
"""The keys of a study's `run:` section."""

def run_command(config: Any, judge_settings: Sequence[Setting] | None = None, redact: bool = True) -> list[str]:
    """The `eft-eval run ...` command line that does what `config` (a `RunConfig`) does: run.json's
    `command`, whichever command started the run (`run`, `demo`, `sweep`), and `sweep --list`.

    `judge_settings`: the judge flags to write where they differ from the defaults (default: all).
    `redact`: `user:password@` of a URL left out (`redacted_argv`), as in every file we write; `sweep
    --list` prints commands to be run, so it keeps them.
    """
    from eft_eval.judging import JUDGE_SETTINGS, JudgeConfig

    model = ["--preset", config.preset] if config.preset else ["--model", str(config.model)]
    args = ["eft-eval", "run", config.task, *model]
    if config.output is not None:
        args += ["--output", str(config.output)]
    args += to_argv(config, RUN_SETTINGS)
    for folder in config.include_paths:
        args += ["--include-path", str(folder)]
    args += to_argv(config.judge, JUDGE_SETTINGS if judge_settings is None else judge_settings, JudgeConfig())
    if config.judge.cache_path is None:
        args.append("--no-cache")
    elif not config.judge_cache_in_run:
        args += ["--cache-dir", str(Path(config.judge.cache_path).parent)]
    return redacted_argv(args) if redact else args


__all__ = ["RUN_KEYS", "RUN_SETTINGS", "judge_names", "run_command"]
