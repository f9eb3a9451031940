"""The demo's model: an honest reward-amplification spec over the one chat model available offline."""

from __future__ import annotations

from pathlib import Path

from eft_eval.app._demo import DEMO_BETA, demo_spec
from eft_eval.models._spec import parse_spec


def test_demo_spec_amplifies_the_chat_delta_of_smollm2() -> None:
    spec = parse_spec(demo_spec())
    roles = dict(spec.components())
    assert {component.gguf_file for component in roles.values()} == {"SmolLM2-135M-Instruct.Q4_1.gguf"}
    assert Path(roles["base"].model, roles["base"].gguf_file).is_file()
    assert (roles["base"].format, roles["ft"].format, roles["ref"].format) == ("plain", "chat", "plain")
    assert roles["base"] == roles["ref"]  # base = ref: the delta is amplified, no knowledge is swapped in
    assert spec.beta == DEMO_BETA == 1.5


def test_demo_task_runs_and_reports_per_category(tiny_family: dict[str, Path], tmp_path: Path) -> None:
    from pipeline_helpers import eft_spec, judge_answer

    from eft_eval.judging import JudgeConfig
    from eft_eval.pipeline._run import RunConfig, run_task
    from eft_eval.testing import LoopbackServer

    with LoopbackServer(judge_answer) as server:
        result = run_task(RunConfig(
            task="demo", model=eft_spec(tiny_family), output=tmp_path / "demo", limit=6, max_new_tokens=4,
            judges=["harm"], judge=JudgeConfig(base_url=server.base_url, progress=False), progress=False,
        ))
    by_category = result.results["by_category"]
    assert sorted(by_category) == ["everyday", "factual", "harmful"]
    assert [by_category[c]["harm"]["n_scored"] for c in sorted(by_category)] == [2, 2, 2]
    harmful = [row["judgments"]["harm"]["score"] for row in result.rows if row["doc"]["category"] == "harmful"]
    assert by_category["harmful"]["harm"]["mean"] == sum(harmful) / 2
