"""Power of a paired comparison: the smallest difference a number of prompts can detect, and the
number of prompts a difference needs (Miller 2024, "Adding Error Bars to Evals").

Two configurations answer the same prompts, so the test is on the per-prompt differences
`d = b - a`, whose spread `sd(d)` is what a pilot measures (smaller than either run's own spread
when prompts are hard or easy for both). For a two-sided test at level `alpha` with power `power`:

    n   = (q(1 - alpha/2) + q(power))**2 * Var(d) / effect**2      (prompts needed)
    MDE = (q(1 - alpha/2) + q(power)) * sd(d) / sqrt(n)            (minimum detectable effect)

Miller's formula takes `q` from the normal distribution. Here `q` is the t distribution's
quantile with n - 1 degrees of freedom (`approximation="t"`, the default), because the test a
researcher then runs is the paired t-test on the sample's own sd: at a pilot's 20-50 prompts
the normal quantiles promise more power than that test has (at n = 20, 0.8 becomes about 0.77),
while at the hundreds of prompts of an eval the two agree to a prompt or two. `"normal"` gives
Miller's formula exactly. Required n is the smallest whole n (at least 2) whose MDE is at most
the effect, so `required_prompts(minimum_detectable_effect(sd, n)) == n`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from eft_eval.errors import EFTEvalError

APPROXIMATIONS = ("t", "normal")
DEFAULT_SIGNIFICANCE = 0.05
DEFAULT_POWER = 0.8
MDE_TEST = "two-sided paired t-test on the per-prompt differences; t quantiles with n - 1 degrees of freedom"
"""How the analyses that mark `below_mde` state the test behind it (JSON)."""


def check_power_settings(alpha: float, power: float, effect: float | None = None,
                         approximation: str = "t") -> None:
    """One line naming the value at fault: alpha and power within (0, 1), effect positive and finite."""
    for name, value in (("alpha", alpha), ("power", power)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise EFTEvalError(f"power analysis: {name}={value!r} is out of range (expected a number > 0 and < 1)")
    if effect is not None and (isinstance(effect, bool) or not isinstance(effect, (int, float))
                               or not math.isfinite(effect) or effect <= 0):
        raise EFTEvalError(f"power analysis: effect={effect!r} is out of range (expected a finite number > 0, "
                           "in the judge's score units)")
    if approximation not in APPROXIMATIONS:
        raise EFTEvalError(f"power analysis: unknown approximation {approximation!r} (known: "
                           f"{', '.join(APPROXIMATIONS)})")


def _multiplier(n: int, alpha: float, power: float, approximation: str) -> float:
    """q(1 - alpha/2) + q(power): normal quantiles, or t quantiles with n - 1 degrees of freedom."""
    if approximation == "normal":
        return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return float(stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1))


def minimum_detectable_effect(sd_difference: float, n: int, alpha: float = DEFAULT_SIGNIFICANCE,
                              power: float = DEFAULT_POWER, approximation: str = "t") -> float:
    """The smallest true mean difference that `n` paired prompts detect with probability `power`
    (two-sided, level `alpha`); NaN below 2 prompts or for an undefined sd."""
    check_power_settings(alpha, power, approximation=approximation)
    if n < 2 or not math.isfinite(sd_difference):
        return math.nan
    return _multiplier(n, alpha, power, approximation) * sd_difference / math.sqrt(n)


def required_prompts(sd_difference: float, effect: float, alpha: float = DEFAULT_SIGNIFICANCE,
                     power: float = DEFAULT_POWER, approximation: str = "t") -> int | None:
    """The smallest number of paired prompts (at least 2) whose minimum detectable effect is at most
    `effect`; None for an undefined sd."""
    check_power_settings(alpha, power, effect, approximation)
    if not math.isfinite(sd_difference):
        return None
    variance_ratio = (sd_difference / effect) ** 2
    normal = _multiplier(2, alpha, power, "normal") ** 2 * variance_ratio
    # A relative tolerance: 7.0000000001 from rounding is 7 prompts, not 8.
    n = max(2, math.ceil(normal * (1 - 1e-12)))
    if approximation == "normal":
        return n
    # t quantiles fall as n grows, so the first n that meets the target is the answer; starting from
    # the normal n (never above it), a few steps at most unless the pilot is tiny.
    while _multiplier(n, alpha, power, "t") ** 2 * variance_ratio > n * (1 + 1e-12):
        n += 1
    return n


@dataclass(frozen=True)
class PairedPower:
    """One paired comparison's power figures, from the per-prompt differences of a pilot."""

    n_paired: int
    mean_difference: float
    """Mean of b - a over the paired prompts (what the pilot observed)."""
    sd_difference: float
    """Sample standard deviation of b - a (n - 1 in the denominator); NaN below 2 prompts."""
    minimum_detectable_effect: float
    """At `n_paired`, `alpha` and `power`."""
    below_mde: bool | None
    """The observed |mean difference| is smaller than the MDE: the pilot could not have told it from 0
    with the stated power. None when the MDE is undefined."""
    alpha: float
    power: float
    approximation: str
    effect: float | None = None
    required_prompts: int | None = None
    """Paired prompts needed to detect `effect`; None without an effect or an sd."""

    def to_dict(self) -> dict[str, Any]:
        return {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
                for key, value in asdict(self).items()}


def paired_power(a: Any, b: Any, alpha: float = DEFAULT_SIGNIFICANCE, power: float = DEFAULT_POWER,
                 effect: float | None = None, approximation: str = "t") -> PairedPower:
    """Power figures of `b - a` over paired prompts (`a[i]`, `b[i]`: one prompt's two scores)."""
    check_power_settings(alpha, power, effect, approximation)
    differences = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    n = int(differences.size)
    mean = float(differences.mean()) if n else math.nan
    sd = float(differences.std(ddof=1)) if n >= 2 else math.nan
    mde = minimum_detectable_effect(sd, n, alpha, power, approximation)
    return PairedPower(
        n_paired=n, mean_difference=mean, sd_difference=sd, minimum_detectable_effect=mde,
        below_mde=bool(abs(mean) < mde) if math.isfinite(mde) else None,
        alpha=float(alpha), power=float(power), approximation=approximation,
        effect=None if effect is None else float(effect),
        required_prompts=None if effect is None else required_prompts(sd, effect, alpha, power, approximation))


__all__ = [
    "APPROXIMATIONS",
    "DEFAULT_SIGNIFICANCE",
    "DEFAULT_POWER",
    "MDE_TEST",
    "PairedPower",
    "check_power_settings",
    "minimum_detectable_effect",
    "paired_power",
    "required_prompts",
]
