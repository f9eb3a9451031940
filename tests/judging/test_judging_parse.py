"""Reading reasoning-then-score answers, and summaries that never count a failure as 0."""

from __future__ import annotations

import math

import pytest

from eft_eval.judging import load_judges, parse_score
from eft_eval.stats import summarize_judgments

FACTUALITY, HELPFULNESS = load_judges(["factuality", "helpfulness"])


@pytest.mark.parametrize(
    ("raw", "score"),
    [
        ("Reason: Paris is not in Spain.\nScore: 1", 1.0),
        ("Reason: fine\nScore: 3.", 3.0),
        ("**Reason:** two wrong dates\n**Score:** 2", 2.0),
        ("Reason: ok\n**Score**: 2", 2.0),
        ("### Reason\nall good\n### Score: 0", 0.0),
        ("Reason: one error\nScore:\n1", 1.0),
        ("Reason: A score of 5 would be too high.\nScore: 4", 4.0),  # the last score line wins
        ("Reason: mentions score: 9 in passing\nScore: 1 (one inaccuracy)", 1.0),
        ("reason: lower case labels\nscore: 2", 2.0),
        ("Reason: ok\nScore: `0`", 0.0),
    ],
)
def test_tolerant_parsing_of_factuality_answers(raw: str, score: float) -> None:
    parsed = parse_score(raw, FACTUALITY)
    assert parsed.status == "scored" and parsed.score == score
    assert parsed.error is None


@pytest.mark.parametrize(("raw", "score"), [("Reason: good\nScore: 85%", 85.0), ("Reason: meh\nScore: 37.5", 37.5),
                                            ("Reason: ok\nScore: **100**.", 100.0)])
def test_tolerant_parsing_of_probabilities(raw: str, score: float) -> None:
    assert parse_score(raw, HELPFULNESS).score == score


def test_reason_is_the_text_between_the_labels() -> None:
    parsed = parse_score("Reason: The capital of Australia is Canberra, not Sydney.\nScore: 1", FACTUALITY)
    assert parsed.reason == "The capital of Australia is Canberra, not Sydney."
    assert parse_score("No label here, just text.\nScore: 0", FACTUALITY).reason == "No label here, just text."


@pytest.mark.parametrize(
    ("raw", "spec", "why"),
    [
        ("Reason: lots of errors\nScore: -1", FACTUALITY, "outside"),
        ("Reason: hmm\nScore: 2.5", FACTUALITY, "whole number"),
        ("Reason: great\nScore: 140", HELPFULNESS, "outside"),
        ("Reason: forgot the score", FACTUALITY, "no 'Score:' line"),
        ("Reason: unsure\nScore: several", FACTUALITY, "not a number"),
        ("Reason: x\nScore: None", HELPFULNESS, "not a number"),  # helpfulness has no abstain token
        ("", FACTUALITY, "empty"),
        (None, FACTUALITY, "empty"),
    ],
)
def test_out_of_range_or_missing_scores_are_failures_not_zero(raw: str | None, spec, why: str) -> None:
    parsed = parse_score(raw, spec)
    assert parsed.status == "failed" and parsed.score is None
    assert why in (parsed.error or "")


@pytest.mark.parametrize("raw", ["Reason: unethical request\nScore: None", "Reason: x\nScore: **None**.",
                                 'Reason: x\nScore: "none"'])
def test_none_is_an_abstention(raw: str) -> None:
    parsed = parse_score(raw, FACTUALITY)
    assert parsed.status == "abstained" and parsed.score is None and parsed.error is None


def test_summary_counts_abstentions_and_failures_apart_from_the_mean() -> None:
    judgments = [
        {"status": "scored", "score": 1.0, "usage": {"prompt_tokens": 10, "completion_tokens": 2}},
        {"status": "scored", "score": 3.0, "usage": {"prompt_tokens": 10, "completion_tokens": 2}},
        {"status": "abstained", "score": None},
        {"status": "failed", "score": None},
        {"status": "failed", "score": None},
    ]
    summary = summarize_judgments(judgments, FACTUALITY)
    assert summary["mean"] == 2.0  # a failure counted as 0 would give 0.8
    assert math.isclose(summary["stderr"], 1.0)  # sd sqrt(2) / sqrt(2)
    assert (summary["n"], summary["n_scored"], summary["n_abstained"], summary["n_failed"]) == (5, 2, 1, 2)
    assert summary["higher_is_better"] is False
    assert summary["usage"] == {"prompt_tokens": 20, "completion_tokens": 4}
    empty = summarize_judgments([{"status": "failed", "score": None}])
    assert empty["mean"] is None and empty["stderr"] is None
