"""Analyses of finished runs (no model, no judge): studies, comparisons, judge agreement, token TV.

Library use (notebooks): load runs and call an analysis for plain data, or an `analyze_*`
function to also write OUT/<kind>.json, .csv and figures:

    from eft_eval.analysis import load_run, frontier_analysis
    data = frontier_analysis([load_run(p) for p in paths], x="helpfulness", y="harm")
    data["points"][0]["pareto_probability"]

`analyze_calibrated(run, labels, judges)` corrects judges' means with a random sample of human labels (PPI++).

`analyze_study(kind, runs, options, output_dir)` is what `eft-eval sweep` calls;
`pairwise(runs, against, output_dir, judges, config)` is `eft-eval pairwise` (it judges: pairs of
responses, both orders, with pairwise judges). Before a sweep,
`analyze_power(pilot_a, pilot_b, effect=0.5)` gives the paired prompts a difference needs. Statistics
live in `eft_eval.stats`; this package loads runs and writes files. Names are re-exported
lazily: `eft-eval --help` imports `eft_eval.analysis.commands`, which must stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eft_eval.lazy import lazy_exports

_EXPORTS = {
    "LOW_TV": "_token_tv",
    "ResponseTV": "_token_tv",
    "TokenTV": "_token_tv",
    "JudgeScores": "_runs",
    "LoadedRun": "_runs",
    "PairedScores": "_runs",
    "load_run": "_runs",
    "load_runs": "_runs",
    "paired_scores": "_runs",
    "scaling_analysis": "_scaling",
    "frontier_analysis": "_frontier",
    "top_p_analysis": "_top_p",
    "compare_analysis": "_compare",
    "agreement_analysis": "_judge_agreement",
    "analyze_power": "_studies",
    "power_analysis": "_power",
    "analyze_calibrated": "_calibrated",
    "calibrated_analysis": "_calibrated",
    "read_human_labels": "_labels",
    "analyze_compare": "_studies",
    "analyze_frontier": "_studies",
    "analyze_judge_agreement": "_studies",
    "analyze_scaling": "_studies",
    "analyze_study": "_studies",
    "analyze_top_p": "_studies",
    "to_dataframe": "_files",
    "Pair": "_pairwise",
    "match_prompts": "_pairwise",
    "pairwise": "_pairwise",
    "format_pairwise_table": "_pairwise_command",
}

__all__ = [
    "LOW_TV",
    "ResponseTV",
    "TokenTV",
    "JudgeScores",
    "LoadedRun",
    "Pair",
    "PairedScores",
    "agreement_analysis",
    "analyze_calibrated",
    "analyze_compare",
    "analyze_frontier",
    "analyze_judge_agreement",
    "analyze_power",
    "analyze_scaling",
    "analyze_study",
    "analyze_top_p",
    "calibrated_analysis",
    "compare_analysis",
    "format_pairwise_table",
    "frontier_analysis",
    "load_run",
    "load_runs",
    "match_prompts",
    "paired_scores",
    "power_analysis",
    "read_human_labels",
    "pairwise",
    "scaling_analysis",
    "to_dataframe",
    "top_p_analysis",
]

if TYPE_CHECKING:
    from eft_eval.analysis._calibrated import analyze_calibrated, calibrated_analysis
    from eft_eval.analysis._compare import compare_analysis
    from eft_eval.analysis._files import to_dataframe
    from eft_eval.analysis._frontier import frontier_analysis
    from eft_eval.analysis._judge_agreement import agreement_analysis
    from eft_eval.analysis._labels import read_human_labels
    from eft_eval.analysis._pairwise import Pair, match_prompts, pairwise
    from eft_eval.analysis._pairwise_command import format_pairwise_table
    from eft_eval.analysis._power import power_analysis
    from eft_eval.analysis._runs import (
        JudgeScores,
        LoadedRun,
        PairedScores,
        load_run,
        load_runs,
        paired_scores,
    )
    from eft_eval.analysis._scaling import scaling_analysis
    from eft_eval.analysis._studies import (
        analyze_compare,
        analyze_frontier,
        analyze_judge_agreement,
        analyze_power,
        analyze_scaling,
        analyze_study,
        analyze_top_p,
    )
    from eft_eval.analysis._token_tv import LOW_TV, ResponseTV, TokenTV
    from eft_eval.analysis._top_p import top_p_analysis


__getattr__ = lazy_exports(__name__, _EXPORTS)
