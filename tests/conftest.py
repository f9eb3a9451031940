"""Shared fixtures: no network, tiny llama models built from configs and saved to a temp folder.

Test doubles a library user may want too (tiny models, `LoopbackServer`, `BatchAPIFake`) live in
`eft_eval.testing`. Helper modules used by these tests only (`lm_eval_helpers`, `study_helpers`, ...)
are imported by their own name, `from study_helpers import ...`: pytest puts this folder on sys.path.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Tiny models gain nothing from a second thread, and with servers or a second process busy on
    the other core, torch's threads spin on barriers and a step gets ~10x slower."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """small_base, small_ft, large_base, large_ft: tiny llama folders sharing one tokenizer."""
    from eft_eval.testing import save_tiny_family

    return save_tiny_family(tmp_path_factory.mktemp("tiny_family"))
