"""The demo's model: an honest reward-amplification spec over the one chat model available offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


@pytest.mark.slow  # the real offline model generates and judges (about a minute on a loaded 2-core CPU)
def test_the_demo_frontier_ends_with_a_pairwise_comparison_by_the_local_judge(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from eft_eval.app._demo import DEMO_NOTES, run_demo_frontier, write_demo_report
    from eft_eval.app.commands import _print_pairwise
    from eft_eval.stats import combine_orders

    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))  # every verdict asked, none from a user's cache
    folder = run_demo_frontier(tmp_path / "frontier", limit=1, max_new_tokens=4, progress=False)
    results = json.loads((folder / "pairwise" / "results.json").read_text())
    assert (results["reference"], results["runs"], results["config"]["backend"]) == ("alpha=0", ["alpha=1"], "local")
    numbers = results["judges"]["preference"]["runs"]["alpha=1"]
    assert numbers["n_pairs"] == 1 and numbers["position_inconsistency"]["n"] == numbers["n_compared"]
    (pair,) = [json.loads(line) for line in (folder / "pairwise" / "pairs.jsonl").read_text().splitlines()]
    judgment = pair["judgments"]["preference"]
    first, swapped = judgment["verdicts"]["first"], judgment["verdicts"]["swapped"]
    # The local judge answered both orders with a verdict it was constrained to; the outcome combines them.
    assert first["verdict"] in ("A", "B", "tie") and swapped["verdict"] in ("A", "B", "tie")
    assert judgment["outcome"] == combine_orders(judgment["first"], judgment["swapped"], "tie")
    assert numbers["position_inconsistency"]["value"] == float(not judgment["consistent"])
    _print_pairwise(folder)
    printed = capsys.readouterr().out
    assert f"pairwise win rates ({folder / 'pairwise'}):" in printed and "preference  alpha=1" in printed
    assert any("Position inconsistency is the share of prompts" in note for note in DEMO_NOTES)
    html = write_demo_report(folder, None, tmp_path / "report.html").read_text()
    assert 'id="pairwise-table-0-preference"' in html and "Position inconsistency is the share" in html
