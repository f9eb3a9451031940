"""Judges as inspect scorers: the ELI5 example task judged inside inspect against a loopback judge
server gives the scores `eft-eval judge` gives for the same responses (re-asks, abstentions, failures)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from eft_eval.testing import LoopbackServer, Reply

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inspect"


def judge_script(body: dict[str, Any]) -> Reply:
    """A judge whose answer depends on the response it is shown: some score, some abstain (`None`,
    which factuality reads as an abstention and helpfulness as unreadable), some need a re-ask."""
    messages = body["messages"]
    prompt = messages[0]["content"]
    response = re.search(r"RESPONSE: (.*?)\n\nUSE THE ANSWER FORMAT", prompt, re.S)
    digest = sum(map(ord, response.group(1) if response else prompt)) % 5
    if digest == 0:
        return Reply("Reason: I will not judge this.\nScore: None")
    if digest == 1 and len(messages) == 1:  # unreadable first, readable when re-asked
        return Reply("Reason: hard to say.\nScore: 7/10")
    return Reply(f"Reason: the response has {digest} issues.\nScore: {digest * 7}")


def test_judge_scorers_in_inspect_equal_eft_eval_judge(tiny_family: dict[str, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    import eft_eval.inspect._registry  # noqa: F401 (registers `eft` as the entry point does)
    from eft_eval.cli import main

    spec = {"base": str(tiny_family["large_base"]), "ft": str(tiny_family["small_ft"]),
            "ref": str(tiny_family["small_base"])}
    with LoopbackServer(judge_script) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "loopback")
        monkeypatch.chdir(EXAMPLES)
        eft = get_model("eft/up", memoize=False, **spec)
        [log] = inspect_eval("eli5.py", model=eft, log_dir=str(tmp_path / "logs"), task_args={"max_tokens": 10}, seed=1,
                             display="none")
        assert log.status == "success", log.error
        inspect_requests = server.request_count
        records = tmp_path / "responses.jsonl"
        records.write_text("".join(json.dumps({"query": s.input, "response": s.output.completion}) + "\n"
                                   for s in log.samples))
        code = main(["judge", "--input", str(records), "--judges", "factuality,helpfulness", "--base-url",
                     server.base_url, "--output", str(tmp_path / "judged"), "--no-cache", "--no-progress"])
        assert code in (0, None)
        assert server.request_count - inspect_requests == inspect_requests  # the same questions, asked again
    judged = [json.loads(line) for line in (tmp_path / "judged" / "samples.jsonl").read_text().splitlines()]
    by_response = {row["response"]: row["judgments"] for row in judged}
    statuses = set()
    for sample in log.samples:
        expected = by_response[sample.output.completion]
        for judge in ("factuality", "helpfulness"):
            score = sample.scores[judge]
            want = expected[judge]
            statuses.add((judge, want["status"]))
            assert score.metadata["status"] == want["status"]
            if want["status"] == "scored":
                assert score.value == want["score"]
            else:
                assert math.isnan(score.value)
            assert score.explanation == (want["reason"] or want.get("error") or "")
            assert score.metadata["higher_is_better"] is (judge == "helpfulness")
    # The cases that matter were met: a re-asked score, an abstention, an unreadable answer.
    assert ("factuality", "abstained") in statuses and ("helpfulness", "failed") in statuses
    assert any(s.scores["helpfulness"].metadata["attempts"] == 2 and s.scores["helpfulness"].metadata["status"]
               == "scored" for s in log.samples)
    # The metrics leave abstentions and failures out instead of counting them as 0.
    results = {score.name: score for score in log.results.scores}
    factuality = [s.scores["factuality"] for s in log.samples]
    scored = [score.value for score in factuality if score.metadata["status"] == "scored"]
    assert results["factuality"].metrics["mean"].value == pytest.approx(sum(scored) / len(scored))
    assert results["factuality"].unscored_samples == len(log.samples) - len(scored) > 0


def test_a_users_own_judge_yaml_and_its_sampling_keys(tmp_path: Path) -> None:
    from eft_eval.errors import EFTEvalError
    from eft_eval.inspect import judge_scorer
    from eft_eval.inspect._scorer import generate_config, load_judge

    builtin = (Path(__file__).resolve().parents[2] / "judges" / "harm.yaml").read_text()
    mine = tmp_path / "strict_harm.yaml"
    mine.write_text(builtin.replace("name: harm", "name: strict_harm"))
    spec = load_judge(str(mine))
    assert spec.name == "strict_harm" and not spec.higher_is_better
    assert generate_config(dict(spec.sampling), spec).max_tokens == 512
    judge_scorer(str(mine))  # builds
    odd = tmp_path / "odd.yaml"
    odd.write_text(builtin.replace("name: harm", "name: odd").replace("temperature: 0",
                                                                         "temperature: 0\n  logit_bias: {}"))
    with pytest.raises(EFTEvalError, match="sampling key 'logit_bias' has no inspect GenerateConfig field"):
        generate_config(dict(load_judge(str(odd)).sampling), load_judge(str(odd)))
