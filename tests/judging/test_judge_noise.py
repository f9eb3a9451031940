"""`--judge-samples K`: K answers per response with distinct seeds, aggregated, and the judge-noise
share of the standard error, on a synthetic judge with known within- and between-response variance."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from eft_eval.judging import JudgeConfig, judge_files, load_judge_file
from eft_eval.judging._samples import combine_samples
from eft_eval.stats import judge_noise
from eft_eval.testing import LoopbackServer, Reply

N, K = 150, 4
SIGMA_BETWEEN, SIGMA_WITHIN = 8.0, 4.0


def synthetic_judge(seeds_seen: dict[int, list[Any]]) -> Any:
    """Scores response i as mu_i + noise: mu_i ~ N(50, 8^2) per response, noise ~ N(0, 4^2) per seed."""
    means = random.Random(0)
    mu = [means.gauss(50, SIGMA_BETWEEN) for _ in range(N)]

    def script(body: dict[str, Any]) -> Reply:
        index = int(body["messages"][0]["content"].split("Response number ")[1].split(".")[0])
        seed = body.get("seed")
        seeds_seen.setdefault(index, []).append(seed)
        noise = random.Random(f"{index}-{seed}").gauss(0, SIGMA_WITHIN)
        return Reply(text=f"Reason: fine.\nScore: {min(100.0, max(0.0, mu[index] + noise)):.4f}")

    return script


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                              dict[int, list[Any]]]:
    tmp = tmp_path_factory.mktemp("noise")
    source = tmp / "in.jsonl"
    source.write_text("".join(json.dumps({"query": f"Q{i}?", "response": f"Response number {i}."}) + "\n"
                              for i in range(N)))
    seeds: dict[int, list[Any]] = {}
    with LoopbackServer(synthetic_judge(seeds)) as server:
        config = JudgeConfig(base_url=server.base_url, api_key="sk-test", cache_path=tmp / "c.sqlite",
                             progress=False, samples=K, concurrency=32)
        results = judge_files([source], ["helpfulness"], tmp / "out", config)
    rows = [json.loads(line) for line in (tmp / "out" / "samples.jsonl").read_text().splitlines()]
    return results, rows, seeds


def test_each_judge_is_asked_k_times_with_distinct_seeds_and_all_k_are_kept(judged: Any) -> None:
    _, rows, seeds = judged
    assert all(sorted(seeds[i], key=str) == [1, 2, 3, None] for i in range(N))  # sample 0 sends no seed
    for row in rows:
        judgment = row["judgments"]["helpfulness"]
        scores = [s["score"] for s in judgment["samples"]]
        assert len(scores) == K and len(set(scores)) > 1  # the judge's noise is visible
        assert judgment["score"] == pytest.approx(float(np.mean(scores)))  # the YAML's aggregation: mean
        assert judgment["aggregation"] == "mean" and judgment["attempts"] == K


def test_judge_noise_matches_an_independent_computation(judged: Any) -> None:
    results, rows, _ = judged
    summary = results["judges"]["helpfulness"]
    noise = summary["judge_noise"]
    y = np.array([[s["score"] for s in row["judgments"]["helpfulness"]["samples"]] for row in rows])  # N x K

    # Cluster-robust (sandwich) standard error of the grand mean over all N*K judgments, clusters =
    # responses, with the n/(n-1) small-sample factor: a different formula for the same quantity.
    residual_sums = (y - y.mean()).sum(axis=1)
    clustered = np.sqrt(N / (N - 1) * np.sum(residual_sums**2)) / y.size
    assert noise["stderr"] == pytest.approx(clustered, rel=1e-9)
    assert summary["stderr"] == pytest.approx(clustered, rel=1e-9)  # summaries are clustered by response
    naive = y.std(ddof=1) / np.sqrt(y.size)  # treating the K judgments as independent: too small
    assert clustered > 1.5 * naive

    # One-way ANOVA mean squares (numpy): within = MSW, between = (MSB - MSW) / K.
    msw = np.sum((y - y.mean(axis=1, keepdims=True)) ** 2) / (N * (K - 1))
    msb = K * np.sum((y.mean(axis=1) - y.mean()) ** 2) / (N - 1)
    assert noise["within_response_variance"] == pytest.approx(msw, rel=1e-9)
    assert noise["between_response_variance"] == pytest.approx((msb - msw) / K, rel=1e-9)
    assert noise["judge_noise_share"] == pytest.approx(msw / msb, rel=1e-9)
    assert noise["judge_noise_stderr"] == pytest.approx(np.sqrt(msw / K / N), rel=1e-9)

    # And the known truth, within sampling error (N=150 responses).
    assert noise["within_response_variance"] == pytest.approx(SIGMA_WITHIN**2, rel=0.2)
    assert noise["between_response_variance"] == pytest.approx(SIGMA_BETWEEN**2, rel=0.35)
    true_share = SIGMA_WITHIN**2 / K / (SIGMA_BETWEEN**2 + SIGMA_WITHIN**2 / K)
    assert noise["judge_noise_share"] == pytest.approx(true_share, abs=0.03)


def test_judge_noise_is_none_without_repeats_and_zero_for_a_deterministic_judge() -> None:
    assert judge_noise([[1.0], [2.0], [3.0]]) is None
    steady = judge_noise([[1.0, 1.0], [3.0, 3.0], [2.0, 2.0]])
    assert steady is not None and steady["judge_noise_share"] == 0 and steady["within_response_variance"] == 0


def test_the_yaml_aggregation_scores_the_samples(tmp_path: Path) -> None:
    source = yaml.safe_load(Path("judges/helpfulness.yaml").read_text())
    (tmp_path / "median.yaml").write_text(yaml.safe_dump({**source, "name": "median_help", "aggregation": "median"}))
    (tmp_path / "majority.yaml").write_text(yaml.safe_dump({**source, "name": "majority_help",
                                                            "aggregation": "majority"}))

    def sample(score: float | None, status: str = "scored") -> dict[str, Any]:
        return {"status": status, "score": score, "reason": "r", "raw": "x", "judge_model": "m", "attempts": 1,
                "usage": {"prompt_tokens": 3, "completion_tokens": 1}}

    median = load_judge_file(tmp_path / "median.yaml")
    judged = combine_samples([sample(10), sample(90), sample(20), sample(None, "failed")], median)
    assert (judged["status"], judged["score"], judged["usage"]["prompt_tokens"]) == ("scored", 20.0, 12)
    majority = load_judge_file(tmp_path / "majority.yaml")
    assert combine_samples([sample(1), sample(0), sample(1)], majority)["score"] == 1.0
    tie = combine_samples([sample(1), sample(0)], majority)
    assert tie["status"] == "failed" and tie["score"] is None and "no majority" in tie["error"]
    abstained = combine_samples([sample(None, "abstained"), sample(None, "failed")], median)
    assert abstained["status"] == "abstained" and abstained["score"] is None
