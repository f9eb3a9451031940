"""How much of a judge's standard error is the judge's own noise (`--judge-samples K`).

With K judgments y_ik of each response i (a one-way random-effects layout), the response's score
is its mean ybar_i and the judge's mean is the mean of those. Its standard error is clustered by
response, sd(ybar_i) / sqrt(n): the K judgments of one response are not n*K independent draws.
The variance of a response mean splits into the responses' own spread and judge noise:

    Var(ybar_i) = sigma_between^2 + sigma_within^2 / K

sigma_within^2 is estimated by the pooled within-response variance (the ANOVA mean square within),
sigma_between^2 by Var(ybar_i) - sigma_within^2 / K (method of moments, floored at 0). The
judge-noise share is the part of the squared standard error that judge noise contributes,
(sigma_within^2 / K) / Var(ybar_i): 0 when judges always agree with themselves, near 1 when
all the spread between responses is judge noise. With unequal K (failed samples), K is their
harmonic mean. Responses with one scored sample count in the mean, not in sigma_within.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def judge_noise(scores_per_response: Sequence[Sequence[float]]) -> dict[str, Any] | None:
    """The decomposition above for one judge; None below two responses or without repeated scores."""
    groups = [[float(s) for s in group] for group in scores_per_response if len(group) > 0]
    n = len(groups)
    repeated = [g for g in groups if len(g) > 1]
    if n < 2 or not repeated:
        return None
    means = [math.fsum(g) / len(g) for g in groups]
    grand = math.fsum(means) / n
    variance_of_means = math.fsum((m - grand) ** 2 for m in means) / (n - 1)
    within = math.fsum((s - math.fsum(g) / len(g)) ** 2 for g in repeated
                       for s in g) / sum(len(g) - 1 for g in repeated)
    k = n / math.fsum(1 / len(g) for g in groups)  # harmonic mean of the samples per response
    noise_variance = within / k
    return {
        "samples_per_response": round(k, 6),
        "n_responses": n,
        "mean": grand,
        "stderr": math.sqrt(variance_of_means / n),
        "within_response_variance": within,
        "between_response_variance": max(0.0, variance_of_means - noise_variance),
        "judge_noise_stderr": math.sqrt(noise_variance / n),
        "judge_noise_share": min(1.0, noise_variance / variance_of_means) if variance_of_means > 0 else None,
    }


def judge_noise_of(judgments: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """`judge_noise` over judgments that carry `samples` (scored samples of each response)."""
    per_response = [[float(s["score"]) for s in j["samples"] if s.get("status") == "scored"]
                    for j in judgments if j.get("samples")]
    return judge_noise(per_response)
