"""The demo's model: an honest reward-amplification spec over the one chat model available offline."""

from __future__ import annotations

from pathlib import Path

from eft_eval.models.spec import parse_spec
from eft_eval.pipeline.demo import DEMO_BETA, demo_spec


def test_demo_spec_amplifies_the_chat_delta_of_smollm2() -> None:
    spec = parse_spec(demo_spec())
    roles = dict(spec.components())
    assert {component.gguf_file for component in roles.values()} == {"SmolLM2-135M-Instruct.Q4_1.gguf"}
    assert Path(roles["base"].model, roles["base"].gguf_file).is_file()
    assert (roles["base"].format, roles["ft"].format, roles["ref"].format) == ("plain", "chat", "plain")
    assert roles["base"] == roles["ref"]  # base = ref: the delta is amplified, no knowledge is swapped in
    assert spec.beta == DEMO_BETA == 1.5
