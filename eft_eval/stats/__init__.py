"""Statistics: per-judge summaries, aggregations, the bootstrap, agreement, the studies' estimates.

The one home for numbers that reports print. Everything is a function over plain data (lists of
judgments, arrays of scores) so it can be tested on hand-made numbers.

- `Estimate`: one typed estimate (value, standard_error, ci_low/ci_high, n, confidence_level,
  method); `str(estimate)` / `estimate.format()` is how every table prints it, `to_dict()` how
  every JSON file writes it. `BootstrapSettings` holds the one set of defaults (9999 resamples,
  seed 0, 95%).
- Aggregations: `get_aggregation(name, params=None) -> Callable[[Sequence[float]], float]` returns
  a registered reduction of a list of scores (`mean`, `median`, `majority`, `proportion_at_least`
  with `{"threshold": t}`); NaN for an empty list or no majority. A judge's YAML `aggregation`
  (and `aggregation_params`) selects one: `get_aggregation(spec.aggregation, spec.aggregation_params)`.
  Add one with `@register_aggregation("name")`.
- Summaries: `summarize_judgments`, `summarize_samples` (results.json's `judges`, `by_model`,
  `by_category`, `length`), `summarize_groups` (any grouping); `summarize_lengths` (mean response
  tokens and share cut off, with intervals).
- Bootstrap: `bootstrap_estimate` (scipy, items resampled, paired across arrays),
  `resample_means` (vectorized paired / unpaired resampling of runs x prompts),
  `distribution_estimate`.
- Printing: `format_number`, `format_mean_se` (`0.412 ± 0.031`) and `format_table` (plain aligned
  text) are how every table and report prints a number; `short_label` shortens a long run label.
- Agreement: `agreement_estimate`, `kappa_estimate`, `spearman_estimate`, `confusion_matrix`, ...
- Pairwise: `combine_orders` (one outcome from both orders, `COMBINE_RULES`),
  `position_inconsistency`, `win_rate`, `length_controlled_win_rate` (AlpacaEval 2's logistic
  length control), `bradley_terry` (`BradleyTerryResult`: Elo-like scores, intervals, ranking).
  Outcomes are floats from the compared run's view: 1 win, 0.5 tie, 0 loss.
- Human-corrected means: `ppi_mean_estimate(labels, predictions, unlabelled)` (prediction-powered
  inference, PPI++ tuned; a `CorrectedMean` with judge-only, human-only and PPI estimates and the
  effective number of labels), `independent_difference` (b - a of independent estimates).
- Studies: `normalized_improvement` (paired bootstrap of `(x - small) / (large - small)`, with the
  denominator's own interval and a status: ok / zero / within_noise), `paired_difference` (mean
  of b - a, bootstrap interval, Wilcoxon and sign-test p-values), `pareto_set` / `pareto_mask` /
  `pareto_probability` (frontier under each judge's direction, and its bootstrap probability).
- Power: `paired_power` (a pilot's paired differences: sd, minimum detectable effect, prompts
  needed for an effect), `minimum_detectable_effect`, `required_prompts` (Miller 2024, t quantiles).

Names are re-exported lazily: `eft_eval.judging` (imported by `eft-eval --help`) uses the
summaries, and that must not pull in numpy and scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_CONFIDENCE_LEVEL": "_estimate",
    "DEFAULT_N_RESAMPLES": "_estimate",
    "DEFAULT_SEED": "_estimate",
    "BootstrapSettings": "_estimate",
    "Estimate": "_estimate",
    "format_mean_se": "_format",
    "format_number": "_format",
    "format_table": "_format",
    "short_label": "_format",
    "add_bootstrap_arguments": "_estimate",
    "settings_from_args": "_estimate",
    "Aggregation": "_aggregation",
    "aggregation_names": "_aggregation",
    "get_aggregation": "_aggregation",
    "register_aggregation": "_aggregation",
    "JudgeLike": "_summary",
    "judge_noise": "_judge_noise",
    "krippendorff_alpha": "_jury",
    "krippendorff_alpha_estimate": "_jury",
    "summarize_jury": "_summary",
    "judge_noise_of": "_judge_noise",
    "STATUSES": "_summary",
    "standard_error": "_summary",
    "summarize_groups": "_summary",
    "summarize_judgments": "_summary",
    "summarize_samples": "_summary",
    "is_cut_off": "_length",
    "response_tokens": "_length",
    "summarize_lengths": "_length",
    "bootstrap_estimate": "_bootstrap",
    "distribution_estimate": "_bootstrap",
    "resample_means": "_bootstrap",
    "ConfusionMatrix": "_agreement",
    "agreement_estimate": "_agreement",
    "agreement_rate": "_agreement",
    "analytic_proportion_se": "_agreement",
    "cohens_kappa": "_agreement",
    "confusion_matrix": "_agreement",
    "kappa_estimate": "_agreement",
    "proportion_estimate": "_agreement",
    "spearman_estimate": "_agreement",
    "DENOMINATOR_OK": "_paired",
    "DENOMINATOR_WITHIN_NOISE": "_paired",
    "DENOMINATOR_ZERO": "_paired",
    "NormalizedImprovement": "_paired",
    "PairedDifference": "_paired",
    "normalized_improvement": "_paired",
    "paired_difference": "_paired",
    "BradleyTerryResult": "_pairwise",
    "COMBINE_RULES": "_pairwise",
    "bradley_terry": "_pairwise",
    "combine_orders": "_pairwise",
    "length_controlled_win_rate": "_pairwise",
    "position_inconsistency": "_pairwise",
    "win_rate": "_pairwise",
    "pareto_mask": "_pareto",
    "CorrectedMean": "_ppi",
    "classical_mean_estimate": "_ppi",
    "effective_labels": "_ppi",
    "independent_difference": "_ppi",
    "ppi_mean_estimate": "_ppi",
    "pareto_probability": "_pareto",
    "pareto_set": "_pareto",
    "DEFAULT_POWER": "_power",
    "DEFAULT_SIGNIFICANCE": "_power",
    "MDE_TEST": "_power",
    "PairedPower": "_power",
    "check_power_settings": "_power",
    "minimum_detectable_effect": "_power",
    "paired_power": "_power",
    "required_prompts": "_power",
}

__all__ = [
    "COMBINE_RULES",
    "DEFAULT_CONFIDENCE_LEVEL",
    "DEFAULT_N_RESAMPLES",
    "DEFAULT_POWER",
    "DEFAULT_SEED",
    "DEFAULT_SIGNIFICANCE",
    "DENOMINATOR_OK",
    "DENOMINATOR_WITHIN_NOISE",
    "DENOMINATOR_ZERO",
    "MDE_TEST",
    "STATUSES",
    "Aggregation",
    "BootstrapSettings",
    "BradleyTerryResult",
    "ConfusionMatrix",
    "CorrectedMean",
    "Estimate",
    "JudgeLike",
    "NormalizedImprovement",
    "PairedDifference",
    "PairedPower",
    "add_bootstrap_arguments",
    "aggregation_names",
    "agreement_estimate",
    "agreement_rate",
    "analytic_proportion_se",
    "bootstrap_estimate",
    "bradley_terry",
    "check_power_settings",
    "classical_mean_estimate",
    "cohens_kappa",
    "combine_orders",
    "confusion_matrix",
    "distribution_estimate",
    "effective_labels",
    "format_mean_se",
    "format_number",
    "format_table",
    "get_aggregation",
    "independent_difference",
    "is_cut_off",
    "judge_noise",
    "judge_noise_of",
    "kappa_estimate",
    "length_controlled_win_rate",
    "minimum_detectable_effect",
    "normalized_improvement",
    "paired_difference",
    "paired_power",
    "pareto_mask",
    "pareto_probability",
    "pareto_set",
    "position_inconsistency",
    "ppi_mean_estimate",
    "proportion_estimate",
    "register_aggregation",
    "required_prompts",
    "resample_means",
    "response_tokens",
    "settings_from_args",
    "krippendorff_alpha",
    "krippendorff_alpha_estimate",
    "short_label",
    "summarize_jury",
    "spearman_estimate",
    "standard_error",
    "summarize_groups",
    "summarize_judgments",
    "summarize_lengths",
    "summarize_samples",
    "win_rate",
]

if TYPE_CHECKING:
    from eft_eval.stats._aggregation import (
        Aggregation,
        aggregation_names,
        get_aggregation,
        register_aggregation,
    )
    from eft_eval.stats._agreement import (
        ConfusionMatrix,
        agreement_estimate,
        agreement_rate,
        analytic_proportion_se,
        cohens_kappa,
        confusion_matrix,
        kappa_estimate,
        proportion_estimate,
        spearman_estimate,
    )
    from eft_eval.stats._bootstrap import (
        bootstrap_estimate,
        distribution_estimate,
        resample_means,
    )
    from eft_eval.stats._estimate import (
        DEFAULT_CONFIDENCE_LEVEL,
        DEFAULT_N_RESAMPLES,
        DEFAULT_SEED,
        BootstrapSettings,
        Estimate,
        add_bootstrap_arguments,
        settings_from_args,
    )
    from eft_eval.stats._format import format_mean_se, format_number, format_table, short_label
    from eft_eval.stats._judge_noise import judge_noise, judge_noise_of
    from eft_eval.stats._jury import krippendorff_alpha, krippendorff_alpha_estimate
    from eft_eval.stats._length import is_cut_off, response_tokens, summarize_lengths
    from eft_eval.stats._paired import (
        DENOMINATOR_OK,
        DENOMINATOR_WITHIN_NOISE,
        DENOMINATOR_ZERO,
        NormalizedImprovement,
        PairedDifference,
        normalized_improvement,
        paired_difference,
    )
    from eft_eval.stats._pairwise import (
        COMBINE_RULES,
        BradleyTerryResult,
        bradley_terry,
        combine_orders,
        length_controlled_win_rate,
        position_inconsistency,
        win_rate,
    )
    from eft_eval.stats._pareto import pareto_mask, pareto_probability, pareto_set
    from eft_eval.stats._power import (
        DEFAULT_POWER,
        DEFAULT_SIGNIFICANCE,
        MDE_TEST,
        PairedPower,
        check_power_settings,
        minimum_detectable_effect,
        paired_power,
        required_prompts,
    )
    from eft_eval.stats._ppi import (
        CorrectedMean,
        classical_mean_estimate,
        effective_labels,
        independent_difference,
        ppi_mean_estimate,
    )
    from eft_eval.stats._summary import (
        STATUSES,
        JudgeLike,
        standard_error,
        summarize_groups,
        summarize_judgments,
        summarize_jury,
        summarize_samples,
    )


__getattr__ = lazy_exports(__name__, _EXPORTS)
