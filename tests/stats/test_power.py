"""Power of a paired comparison: the prompts the formula asks for give the promised power when the
paired t-test is simulated on them, and the minimum detectable effect is the formula's inverse."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from eft_eval.errors import EFTEvalError
from eft_eval.stats import minimum_detectable_effect, paired_power, required_prompts

DRAWS = 4000
"""Simulated pilots per case: the rejection rate's standard error is at most 0.008."""


def rejection_rate(differences: np.ndarray, alpha: float) -> float:
    """Share of simulated studies (rows) in which the two-sided paired t-test rejects "no difference"."""
    n = differences.shape[1]
    t = differences.mean(axis=1) / (differences.std(axis=1, ddof=1) / math.sqrt(n))
    return float(np.mean(np.abs(t) > stats.t.ppf(1 - alpha / 2, n - 1)))


@pytest.mark.parametrize(("sd", "effect", "power", "alpha"), [
    (1.0, 0.5, 0.8, 0.05),    # a pilot-sized study: about 34 prompts
    (1.0, 1.2, 0.8, 0.05),    # tiny: 8 prompts, where t and normal quantiles differ most
    (2.0, 0.3, 0.8, 0.01),    # eval-sized: hundreds of prompts, a stricter level
    (1.0, 0.8, 0.9, 0.05),    # a higher power
])
def test_required_prompts_give_the_target_power_in_simulation(sd: float, effect: float, power: float,
                                                              alpha: float) -> None:
    n = required_prompts(sd, effect, alpha, power)
    assert n is not None
    rng = np.random.default_rng(12345)
    rate = rejection_rate(rng.normal(effect, sd, size=(DRAWS, n)), alpha)
    assert rate == pytest.approx(power, abs=0.05)
    # The smallest such n: one prompt fewer has a larger minimum detectable effect than the effect.
    assert minimum_detectable_effect(sd, n, alpha, power) <= effect < minimum_detectable_effect(sd, n - 1, alpha, power)


def test_discrete_judge_scores_follow_the_formula_too() -> None:
    """Judges give few distinct scores: differences of -2..2 points, not normal, at the computed n."""
    values, weights = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    mean = float(values @ weights)
    sd = math.sqrt(float(((values - mean) ** 2) @ weights))
    n = required_prompts(sd, mean)
    assert n is not None and 400 < n < 600
    rng = np.random.default_rng(7)
    assert rejection_rate(rng.choice(values, p=weights, size=(DRAWS, n)), 0.05) == pytest.approx(0.8, abs=0.05)


def test_normal_quantiles_are_millers_formula_and_fall_short_on_a_tiny_pilot() -> None:
    # n = (z_0.975 + z_0.8)^2 * Var / effect^2 = 7.849 * 4 / 1 = 31.4 -> 32.
    assert required_prompts(2.0, 1.0, approximation="normal") == 32
    assert minimum_detectable_effect(1.0, 100, approximation="normal") == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / 10)
    # Why t is the default: at 6 prompts the normal formula promises 0.8 but the t-test has about 0.66.
    n = required_prompts(1.0, 1.2, approximation="normal")
    assert n == 6
    rate = rejection_rate(np.random.default_rng(3).normal(1.2, 1.0, size=(DRAWS, n)), 0.05)
    assert rate < 0.72


@pytest.mark.parametrize("approximation", ["t", "normal"])
@pytest.mark.parametrize("n", [2, 3, 10, 57, 1000, 123457])
def test_the_minimum_detectable_effect_at_n_needs_exactly_n_prompts(n: int, approximation: str) -> None:
    for sd in (0.3, 1.0, 25.0):
        mde = minimum_detectable_effect(sd, n, 0.05, 0.8, approximation)
        assert required_prompts(sd, mde, 0.05, 0.8, approximation) == n
    # Four times the prompts, about half the detectable effect (exactly half with normal quantiles).
    ratio = minimum_detectable_effect(1.0, 4 * n, approximation=approximation) / minimum_detectable_effect(
        1.0, n, approximation=approximation)
    assert ratio == pytest.approx(0.5) if approximation == "normal" else ratio <= 0.5


def test_paired_power_uses_the_paired_spread_not_each_runs_own() -> None:
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0.0, 3.0, 200)          # prompts hard or easy for both runs
    a = difficulty + rng.normal(0.0, 0.5, 200)
    b = difficulty + 0.2 + rng.normal(0.0, 0.5, 200)
    result = paired_power(a, b, effect=0.1)
    d = b - a
    assert result.n_paired == 200 and result.sd_difference == pytest.approx(d.std(ddof=1))
    assert result.sd_difference < 1.0 < a.std()      # pairing removes the prompts' spread
    assert result.mean_difference == pytest.approx(d.mean())
    assert result.minimum_detectable_effect == pytest.approx(minimum_detectable_effect(d.std(ddof=1), 200))
    assert result.required_prompts == required_prompts(d.std(ddof=1), 0.1)
    assert result.to_dict()["approximation"] == "t" and result.to_dict()["effect"] == 0.1
    # Marked below the MDE only when the observed difference is smaller than it.
    assert result.below_mde is bool(abs(d.mean()) < result.minimum_detectable_effect)
    assert paired_power(a, a + 0.001 + rng.normal(0, 0.5, 200)).below_mde is True
    assert paired_power(a, a + 2.0 + rng.normal(0, 0.5, 200)).below_mde is False


def test_too_few_prompts_give_no_figures_rather_than_a_guess() -> None:
    one = paired_power([1.0], [2.0], effect=1.0).to_dict()
    assert one["n_paired"] == 1 and one["sd_difference"] is None and one["minimum_detectable_effect"] is None
    assert one["required_prompts"] is None and one["below_mde"] is None
    # No spread at all: any difference is detected with the fewest prompts a t-test takes.
    assert paired_power([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], effect=0.5).required_prompts == 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"power": 1.0}, "power=1.0 is out of range"),
    ({"power": 0.0}, "power=0.0 is out of range"),
    ({"alpha": 1.5}, "alpha=1.5 is out of range"),
    ({"alpha": math.nan}, "alpha=nan is out of range"),
    ({"effect": 0.0}, "effect=0.0 is out of range"),
    ({"effect": -0.5}, "effect=-0.5 is out of range"),
    ({"effect": math.inf}, "effect=inf is out of range"),
    ({"approximation": "z"}, "unknown approximation 'z'"),
])
def test_bad_settings_are_one_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EFTEvalError, match=message.replace("(", r"\(")) as raised:
        paired_power([1.0, 2.0, 3.0], [1.5, 2.0, 4.0], **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)
