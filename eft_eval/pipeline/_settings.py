"""The run settings table: each `eft-eval run` flag, its study `run:` key and its `RunConfig` field.

`eft-eval run` reads its flags through it, a sweep reads each study point's settings through it
and writes `sweep --list` commands back through it; judge settings have `JUDGE_SETTINGS`.
"""

from __future__ import annotations

from typing import Any

from eft_eval.settings import Setting


def judge_names(value: Any) -> list[str] | None:
    """`a, b` or a list of names -> the names; None stays None (the task's judges)."""
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return [str(name) for name in value]


RUN_SETTINGS: tuple[Setting, ...] = (
    # In the order `sweep --list` writes them.
    Setting("judges", "judges", study=True, parse=judge_names, render=lambda names: [",".join(names)]),
    Setting("limit", "limit", study=True),
    Setting("max_new_tokens", "max_new_tokens", study=True),
    Setting("gen_kwargs", "gen_kwargs", study=True),
    Setting("dtype", "dtype", study=True),
    Setting("device", "device", study=True),
    Setting("seed", "seed", study=True, parse=int),
    Setting("batch_size", "batch_size", study=True, parse=int),
    Setting("data_files", "data_files", study=True, parse=lambda files: [str(path) for path in files]),
)
"""Every run setting a flag and a study file share (the task, model and folders aside)."""

RUN_KEYS = ("task", *(setting.dest for setting in RUN_SETTINGS))
"""The keys of a study's `run:` section."""

__all__ = ["RUN_KEYS", "RUN_SETTINGS", "judge_names"]
