"""The open request stream of `eft-eval bench serve`: lengths that vary 10x, Poisson arrival times."""

from __future__ import annotations

import statistics

from eft_eval.bench._serve_stream import stream_workload, with_arrivals


def _encode(text: str) -> list[str]:
    return text.split()


def test_prompt_and_answer_lengths_vary_tenfold_and_arrivals_are_poisson() -> None:
    workload = stream_workload(400, 50, 0, _encode)
    prompts = [len(_encode(r.prompt)) for r in workload]
    answers = [r.tokens for r in workload]
    assert 7 <= max(prompts) / min(prompts) <= 12
    assert max(answers) == 50 and min(answers) == 5 and len(set(answers)) == 5
    timed = with_arrivals(workload, rate=20.0, seed=0)
    gaps = [b.at - a.at for a, b in zip(timed, timed[1:])]
    assert timed[0].at == 0 and all(g > 0 for g in gaps)
    assert 0.04 < statistics.mean(gaps) < 0.06  # 1 / rate
    assert 0.7 < statistics.stdev(gaps) / statistics.mean(gaps) < 1.3  # exponential: sd = mean
    assert stream_workload(400, 50, 0, _encode) == workload  # the seed fixes it
    assert stream_workload(400, 50, 1, _encode) != workload
