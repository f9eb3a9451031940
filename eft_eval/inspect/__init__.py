"""EFT in inspect-ai: the `eft` model provider and eft-eval's judges as inspect scorers.

    inspect eval examples/inspect/hh.py --model eft/up -M base=LARGE -M ft=SMALL_CHAT -M ref=SMALL

    from eft_eval.inspect import judge_scorer
    Task(dataset=..., solver=generate(), scorer=[judge_scorer("helpfulness"), judge_scorer("harm")])

    _registry.py  what inspect's `inspect_ai` entry point loads: registers the `eft` provider
    _provider.py  `EFTModelAPI`: generate through the serve engine's batched EFT decoder
    _config.py    `-M` model args -> EFT spec; `GenerateConfig` -> EFT sampling; chat messages -> prompt
    _dataset.py   `task_samples`: an eft-eval task's prompts (the paper's HH, ELI5) as inspect samples
    _scorer.py    `judge_scorer`: a judge YAML as an inspect scorer, its calls through an inspect model

Needs the `inspect` extra (`pip install 'eft-eval[inspect]'`). Names load lazily, so importing
this package imports neither inspect-ai nor torch; eft-eval itself never needs inspect-ai.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "EFTModelAPI": "_provider",
    "eft": "_registry",
    "ProviderOptions": "_config",
    "chat_prompt": "_config",
    "model_spec": "_config",
    "sampling_request": "_config",
    "task_samples": "_dataset",
    "InspectJudgeBackend": "_scorer",
    "judge_scorer": "_scorer",
}

__all__ = ["EFTModelAPI", "InspectJudgeBackend", "ProviderOptions", "chat_prompt", "eft", "judge_scorer", "model_spec",
           "sampling_request", "task_samples"]

if TYPE_CHECKING:
    from eft_eval.inspect._config import ProviderOptions, chat_prompt, model_spec, sampling_request
    from eft_eval.inspect._dataset import task_samples
    from eft_eval.inspect._provider import EFTModelAPI
    from eft_eval.inspect._registry import eft
    from eft_eval.inspect._scorer import (
        InspectJudgeBackend,
        judge_scorer,
    )

__getattr__ = lazy_exports(__name__, _EXPORTS)
