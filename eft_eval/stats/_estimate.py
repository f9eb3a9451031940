"""One typed estimate (point, standard error, interval, n, method) and the bootstrap settings.

Every report prints an estimate the same way (`Estimate.format()`), and writes it the same way
(`Estimate.to_dict()`, NaN as null), so a number means the same thing in every table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.stats._format import format_number

DEFAULT_N_RESAMPLES = 9999
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE_LEVEL = 0.95
MAX_N_RESAMPLES = 10_000_000
"""The most resamples a bootstrap takes. Resampling runs in blocks of bounded size, but each
statistic's bootstrap distribution (8 bytes a resample, 80 MB here; a study holds several) is
kept whole, since the interval is read from it; far fewer resamples already fix a 95% interval."""


@dataclass(frozen=True)
class BootstrapSettings:
    """How standard errors and intervals are computed: the one place holding the defaults."""

    n_resamples: int = DEFAULT_N_RESAMPLES
    seed: int = DEFAULT_SEED
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL

    def __post_init__(self) -> None:
        # Checked here, not where numpy would fail: one line naming the value, from every caller.
        checked = checked_bootstrap(self.n_resamples, self.seed, self.confidence_level)
        for name, value in zip(("n_resamples", "seed", "confidence_level"), checked):
            object.__setattr__(self, name, value)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the `*_estimate` functions."""
        return {"n_resamples": self.n_resamples, "seed": self.seed, "confidence_level": self.confidence_level}


def checked_bootstrap(n_resamples: Any, seed: Any, confidence_level: Any = DEFAULT_CONFIDENCE_LEVEL,
                      ) -> tuple[int, int, float]:
    """The bootstrap's settings as numbers it can use, or an `EFTEvalError` naming the one at fault."""
    from eft_eval.parsing import SEED_MAX, parse_number

    where = "bootstrap"
    resamples = int(parse_number(_plain(n_resamples), "n_resamples", where, integer=True, minimum=2))
    if resamples > MAX_N_RESAMPLES:
        raise EFTEvalError(f"{where}: n_resamples={resamples} is more than {MAX_N_RESAMPLES} (each statistic's "
                           f"bootstrap distribution is kept in memory, 8 bytes a resample: "
                           f"{resamples * 8 / 1e6:,.0f} MB here); use fewer, the default {DEFAULT_N_RESAMPLES} is "
                           "enough for a 95% interval")
    seed_value = int(parse_number(_plain(seed), "seed", where, integer=True, minimum=0, maximum=SEED_MAX))
    level = float(parse_number(confidence_level, "confidence_level", where, minimum=0, maximum=1,
                               exclusive_minimum=True, exclusive_maximum=True))
    return resamples, seed_value, level


def _plain(value: Any) -> Any:
    """A numpy integer as a Python int (the parser takes Python numbers and text only)."""
    return value.item() if type(value).__module__ == "numpy" and hasattr(value, "item") else value


@dataclass(frozen=True)
class Estimate:
    """A statistic with its standard error and confidence interval."""

    value: float
    """The statistic on the observed items (NaN when undefined, e.g. no items)."""
    standard_error: float
    """Standard deviation of the bootstrap distribution (ddof=1), or the analytic standard error."""
    ci_low: float
    ci_high: float
    n: int
    """Number of items the statistic is computed over."""
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL
    undefined_resamples: int = 0
    """Resamples where the statistic was undefined (e.g. kappa with one class); left out."""
    method: str = "bootstrap-percentile"
    """How `standard_error` and the interval were computed (e.g. `paired-bootstrap-percentile`)."""

    @property
    def interval(self) -> tuple[float, float]:
        return (self.ci_low, self.ci_high)

    def to_dict(self) -> dict[str, Any]:
        # JSON has no NaN: undefined numbers are written as null.
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    def format(self, digits: int = 3) -> str:
        """`0.700 ± 0.145 (95% CI 0.400-0.900, n=10)`; "±" is one standard error."""
        level = f"{self.confidence_level:.0%}"
        return (f"{format_number(self.value, digits)} ± {format_number(self.standard_error, digits)} "
                f"({level} CI {format_number(self.ci_low, digits)}-{format_number(self.ci_high, digits)}, n={self.n})")

    def __str__(self) -> str:
        return self.format()


def add_bootstrap_arguments(parser: Any) -> None:
    """`--n-resamples`, `--seed`, `--confidence` on an argparse parser, with the one set of defaults."""
    from eft_eval.parsing import count_arg, number_arg, seed_arg

    parser.add_argument("--n-resamples", type=count_arg(2), default=DEFAULT_N_RESAMPLES,
                        help=f"bootstrap resamples (default {DEFAULT_N_RESAMPLES})")
    parser.add_argument("--seed", type=seed_arg(), default=DEFAULT_SEED,
                        help=f"bootstrap seed (default {DEFAULT_SEED})")
    parser.add_argument("--confidence", type=number_arg(minimum=0, exclusive_minimum=True, maximum=1,
                                                          exclusive_maximum=True),
                        default=DEFAULT_CONFIDENCE_LEVEL,
                        help=f"interval confidence level (default {DEFAULT_CONFIDENCE_LEVEL})")


def settings_from_args(args: Any) -> BootstrapSettings:
    """The `BootstrapSettings` of arguments added by `add_bootstrap_arguments`."""
    if args.n_resamples < 2:
        raise EFTEvalError(f"--n-resamples must be at least 2, got {args.n_resamples}")
    if not 0 < args.confidence < 1:
        raise EFTEvalError(f"--confidence must be between 0 and 1, got {args.confidence}")
    return BootstrapSettings(n_resamples=args.n_resamples, seed=args.seed, confidence_level=args.confidence)
