"""Token-level TV analysis: correct values, summary, HTML highlight and `eft-eval analyze tv`."""

from __future__ import annotations

import json

import pytest
import torch

from eft_eval.analysis._token_tv import LOW_TV, summarize, token_tv
from eft_eval.bench._speculative_family import (
    FamilyShape,
    build_family,
    family_eft_model,
)
from eft_eval.cli import main
from eft_eval.report import token_tv_page
from eft_eval.testing import save_model, tiny_tokenizer

PROMPTS = ["Why is the sky blue?", "How do I bake bread?"]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def family(tokenizer):
    return build_family(tokenizer, FamilyShape(small_hidden=32, extra_layers=1, large_intermediate=128,
                                               base_noise=1.0, seed=2))


def test_tv_matches_direct_computation(family, tokenizer):
    eft = family_eft_model(family, tokenizer)
    ft_alone = family_eft_model({"ft": family["ft"]}, tokenizer)
    responses = [g.token_ids for g in eft.generate(PROMPTS, max_new_tokens=10)]
    analysed = token_tv(eft, PROMPTS, responses, top=2)
    assert [len(r.tokens) for r in analysed] == [len(ids) for ids in responses]
    for prompt, ids, result in zip(PROMPTS, responses, analysed):
        p_eft = eft.score_ids(eft.encode([prompt]), [ids])[0].exp()
        p_ft = ft_alone.score_ids(ft_alone.encode([prompt]), [ids])[0].exp()
        expected = 0.5 * (p_eft - p_ft).abs().sum(-1)
        torch.testing.assert_close(torch.tensor([t.tv for t in result.tokens], dtype=torch.float64),
                                   expected.double(), atol=1e-5, rtol=0)
        for t, token in enumerate(result.tokens):
            assert token.token_id == ids[t]
            assert all(w.p_eft > w.p_ft for w in token.up) and all(w.p_eft < w.p_ft for w in token.down)
            if token.up:  # the top up-weighted token is the one whose probability rose most
                best = int((p_eft[t] - p_ft[t]).argmax())
                assert token.up[0].token == eft.detokenize([best])
    assert max(t.tv for r in analysed for t in r.tokens) > LOW_TV


def test_tv_is_zero_when_base_equals_reference(family, tokenizer):
    same = family_eft_model({"base": family["ref"], "ft": family["ft"], "ref": family["ref"]}, tokenizer)
    responses = [g.token_ids for g in same.generate(PROMPTS, max_new_tokens=6)]
    summary = summarize(token_tv(same, PROMPTS, responses))
    assert summary["tokens"] == sum(len(r) for r in responses)
    assert summary[f"share_tv_below_{LOW_TV}"] == 1.0 and summary["max_tv"] < 1e-4


def test_html_highlights_high_tv_tokens(family, tokenizer):
    eft = family_eft_model(family, tokenizer)
    responses = [g.token_ids for g in eft.generate(PROMPTS, max_new_tokens=12)]
    analysed = token_tv(eft, PROMPTS, responses)
    page = token_tv_page(analysed, summarize(analysed))
    high = sum(t.tv >= LOW_TV for r in analysed for t in r.tokens)
    assert high > 0
    assert page.count('class="tok high"') == high
    assert page.count('class="tok') == sum(len(r.tokens) for r in analysed)
    assert "Why is the sky blue?" in page


def test_analyze_tv_command(family, tokenizer, tmp_path, capsys):
    paths = {role: save_model(model, tokenizer, tmp_path / role) for role, model in family.items()}
    spec = f"base={paths['base']},ft={paths['ft']},ref={paths['ref']}"
    out = tmp_path / "generated"
    argv = ["analyze", "tv", "--model", spec, "--prompt", PROMPTS[0], "--prompt", PROMPTS[1],
            "--max-new-tokens", "8", "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["responses"] == 2 and 0 < summary["tokens"] <= 16
    assert 0.0 <= summary[f"share_tv_below_{LOW_TV}"] <= 1.0 and summary["mean_tv"] > 0
    written = json.loads((out / "tv.json").read_text())
    assert written["summary"]["tokens"] == summary["tokens"]
    assert (out / "tv.html").read_text().count('class="tok') == summary["tokens"]

    # Existing responses (eft-eval generate's JSON lines) are analysed as given.
    records = tmp_path / "samples.jsonl"
    records.write_text("\n".join(json.dumps({"query": p, "response": "Paris is the capital."}) for p in PROMPTS))
    assert main(["analyze", "tv", "--model", spec, "--responses", str(records), "--out", str(tmp_path / "given")]) == 0
    assert "2 responses" in capsys.readouterr().out
    given = json.loads((tmp_path / "given" / "tv.json").read_text())
    assert [r["response"] for r in given["responses"]] == ["Paris is the capital."] * 2

    assert main(["analyze", "tv", "--model", str(paths["ft"]), "--prompt", "hi", "--out", str(tmp_path / "x")]) == 2
    assert "delta" in capsys.readouterr().err
    records.write_text('{"response": "no query"}\n')
    assert main(["analyze", "tv", "--model", spec, "--responses", str(records)]) == 2
    assert "samples.jsonl:1" in capsys.readouterr().err


def test_token_pieces_join_up_to_the_response(family, tokenizer):
    eft = family_eft_model(family, tokenizer)
    # "é" and "…" are several bytes: byte-level BPE splits them over tokens.
    text = "Café au lait… Paris is the capital of France."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    [result] = token_tv(eft, PROMPTS[:1], [ids])
    assert "".join(t.text for t in result.tokens) == text == result.response
    assert len(result.tokens) == len(ids)
