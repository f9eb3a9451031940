"""Where the `eft` backend runs and where its cached answers go.

Kept apart from the backend so the process / cache rules can be read (and changed) on one screen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import torch

logger = logging.getLogger(__name__)


def distributed_accelerator() -> Any:
    """accelerate's `Accelerator` when launched with several processes, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from datetime import timedelta

    from accelerate import Accelerator, InitProcessGroupKwargs

    # As `hf`: long evaluations must not hit the process group's default 30-minute timeout.
    accelerator = Accelerator(kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(weeks=52))])
    if accelerator.num_processes <= 1:
        logger.warning(
            "WORLD_SIZE=%s but accelerate set up no process group (on CPU set ACCELERATE_USE_CPU=1): "
            "every process evaluates every request", os.environ["WORLD_SIZE"],
        )
        return None
    return accelerator


def device_override(accelerator: Any, requested: str | None, explicit: bool) -> str | None:
    """Device override for every component, or None to keep the spec's placement."""
    if accelerator is not None:
        return str(accelerator.device)  # one device per process: the processes split the requests
    if explicit or not requested:
        return None
    if requested.startswith("cuda") and not torch.cuda.is_available():
        logger.debug("device %s requested but CUDA is not available: using cpu", requested)
        return "cpu"
    return requested


def model_identity(spec: Mapping[str, Any], max_length: int) -> str:
    """Everything that changes this model's answers: the full spec and the context window."""
    text = json.dumps({"spec": spec, "max_length": max_length}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scope_cache_to_model(dbdict: Any, identity: str) -> None:
    """Point lm-eval's cache (a SqliteDict) at a table of its own for this model.

    lm-eval keys cached answers by the request only and names the file after `--use_cache` only,
    so two EFT specs sharing one path would read each other's answers. SqliteDict keeps several
    tables per file and builds every query from `tablename`; switching it keeps one file per
    `--use_cache` path with one table per model.
    """
    from sqlitedict import SqliteDict

    table = f"eft_{identity}"
    SqliteDict(dbdict.filename, tablename=table, autocommit=True).close()  # creates the table
    dbdict.tablename = table
    logger.info("eft: cached answers for this model go to table %s of %s", table, dbdict.filename)


__all__ = ["device_override", "distributed_accelerator", "model_identity", "scope_cache_to_model"]
